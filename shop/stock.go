package shop

import "errors"

// BasketItem is one line of a basket: a product and how many of it.
type BasketItem struct {
	ProductID int64 `json:"product_id"`
	Quantity  int32 `json:"quantity"`
}

// Errors of buying (lesson 12).
var (
	// ErrProductNotFound is returned when no product has the requested id.
	ErrProductNotFound = errors.New("product not found")
	// ErrOutOfStock is returned when fewer units are left than were asked for.
	ErrOutOfStock = errors.New("out of stock")
	// ErrInvalidQuantity is returned for a quantity of zero or less, or an
	// empty basket.
	ErrInvalidQuantity = errors.New("quantity must be at least 1")
	// ErrAlreadyRedeemed is returned when the user has redeemed the coupon before.
	ErrAlreadyRedeemed = errors.New("coupon already redeemed")
	// ErrInvalidCoupon is returned for a coupon code that is empty or longer
	// than 64 bytes.
	ErrInvalidCoupon = errors.New("not a coupon code")
)
