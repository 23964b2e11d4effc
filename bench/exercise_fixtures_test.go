package bench

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/singleflight"

	naivebulkhead "works-vs-scales/naive/bulkheads"
	scalablebulkhead "works-vs-scales/scalable/bulkheads"
	scalablebreaker "works-vs-scales/scalable/circuitbreaker"
	"works-vs-scales/shop"
	"works-vs-scales/shop/gateway"
)

// The wrong answers a trainee most often writes to each exercise, the ones
// its lesson warns about. The tests in exercises_test.go prove that each
// exercise's check fails on them, with a message that says what is wrong.

// feedPageByCreatedAt is a wrong answer to exercise 2: a keyset on created_at
// alone, which skips the posts that share the last post's microsecond.
func feedPageByCreatedAt(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	after := time.Date(9999, time.December, 31, 0, 0, 0, 0, time.UTC)
	if token != "" {
		micros, err := strconv.ParseInt(token, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("feed page %q: %w", token, err)
		}
		after = time.UnixMicro(micros)
	}
	const feedAfterQuery = `SELECT id, author_id, title, created_at FROM posts
		WHERE created_at < $1 ORDER BY created_at DESC, id DESC LIMIT $2`
	posts, err := queryPosts(ctx, db, feedAfterQuery, after, limit+1)
	if err != nil || len(posts) <= limit {
		return posts, "", err
	}
	return posts[:limit], strconv.FormatInt(posts[limit-1].CreatedAt.UnixMicro(), 10), nil
}

// feedPageByID is a wrong answer to exercise 2: a keyset on id alone, which
// skips the posts whose id is newer than their place in the feed.
func feedPageByID(ctx context.Context, db *pgxpool.Pool, token string, limit int) ([]shop.Post, string, error) {
	after := int64(1 << 62)
	if token != "" {
		var err error
		if after, err = strconv.ParseInt(token, 10, 64); err != nil {
			return nil, "", fmt.Errorf("feed page %q: %w", token, err)
		}
	}
	const feedAfterQuery = `SELECT id, author_id, title, created_at FROM posts
		WHERE id < $1 ORDER BY created_at DESC, id DESC LIMIT $2`
	posts, err := queryPosts(ctx, db, feedAfterQuery, after, limit+1)
	if err != nil || len(posts) <= limit {
		return posts, "", err
	}
	return posts[:limit], strconv.FormatInt(posts[limit-1].ID, 10), nil
}

func queryPosts(ctx context.Context, db *pgxpool.Pool, query string, args ...any) ([]shop.Post, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Post, error) {
		var p shop.Post
		err := row.Scan(&p.ID, &p.AuthorID, &p.Title, &p.CreatedAt)
		return p, err
	})
}

// categoryCountsQuery is the menu's query, as the naive catalog runs it.
const categoryCountsQuery = `SELECT category, count(*) FROM products GROUP BY category`

func queryCategoryCounts(ctx context.Context, db *pgxpool.Pool) (map[string]int64, error) {
	rows, err := db.Query(ctx, categoryCountsQuery)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64)
	var category string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&category, &n}, func() error {
		counts[category] = n
		return nil
	})
	return counts, err
}

// sharedMapCatalog is a wrong answer to exercise 6: it hands every caller the
// cache's own map, so one caller's change is everyone's menu.
type sharedMapCatalog struct {
	db       *pgxpool.Pool
	mu       sync.Mutex
	counts   map[string]int64
	loadedAt time.Time
}

func (c *sharedMapCatalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil || time.Since(c.loadedAt) > time.Minute {
		counts, err := queryCategoryCounts(ctx, c.db)
		if err != nil {
			return nil, err
		}
		c.counts, c.loadedAt = counts, time.Now()
	}
	return c.counts, nil
}

// unlockedCatalog is a wrong answer to exercise 6: no mutex, so callers who
// arrive together all find it empty, all query, and race on its fields.
type unlockedCatalog struct {
	db       *pgxpool.Pool
	counts   map[string]int64
	loadedAt time.Time
}

func (c *unlockedCatalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	if c.counts == nil || time.Since(c.loadedAt) > time.Minute {
		counts, err := queryCategoryCounts(ctx, c.db)
		if err != nil {
			return nil, err
		}
		c.counts, c.loadedAt = counts, time.Now()
	}
	return maps.Clone(c.counts), nil
}

// foreverCatalog is a wrong answer to exercise 6: it loads the menu once and
// keeps it for the life of the process.
type foreverCatalog struct {
	db     *pgxpool.Pool
	mu     sync.Mutex
	counts map[string]int64
}

func (c *foreverCatalog) CategoryCounts(ctx context.Context) (map[string]int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		counts, err := queryCategoryCounts(ctx, c.db)
		if err != nil {
			return nil, err
		}
		c.counts = counts
	}
	return maps.Clone(c.counts), nil
}

// keyForwardingPayments is a wrong answer to exercise 9: the starting code
// with the key passed on to the gateway. The gateway charges once per key,
// but every concurrent call records a payment of its own.
type keyForwardingPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	paid    sync.Map // key → shop.Payment
}

func (p *keyForwardingPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	if paid, ok := p.paid.Load(key); ok {
		return paid.(shop.Payment), nil
	}
	var charge gateway.Charge
	var err error
	for range 3 {
		if charge, err = p.gateway.Charge(ctx, req, key); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, 'charged', $4) RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	if err := p.db.QueryRow(ctx, insertPayment, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	p.paid.Store(key, payment)
	return payment, nil
}

// checkThenInsertPayments is a wrong answer to exercise 9: it looks for the
// key's payment, and when there is none, charges (with the key) and inserts.
// Concurrent calls all find none; the unique key keeps one row, and the
// others get the database's duplicate key error.
type checkThenInsertPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
}

func (p *checkThenInsertPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	const paymentOfKey = `SELECT id, user_id, amount_cents, currency, status, coalesce(charge_id, '')
		FROM payments WHERE idempotency_key = $1`
	var payment shop.Payment
	err := p.db.QueryRow(ctx, paymentOfKey, key).Scan(&payment.ID, &payment.UserID, &payment.AmountCents, &payment.Currency, &payment.Status, &payment.ChargeID)
	if err == nil {
		return payment, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	var charge gateway.Charge
	for range 3 {
		if charge, err = p.gateway.Charge(ctx, req, key); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (idempotency_key, user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, $4, 'charged', $5) RETURNING id`
	payment = shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	if err := p.db.QueryRow(ctx, insertPayment, key, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID); err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	return payment, nil
}

// commonByTypedEmail is a wrong answer to exercise 5: a set of the emails as
// typed, which misses a customer who signed up again in capitals or with
// spaces.
func commonByTypedEmail(a, b []shop.User, _ func(shop.User) string) []shop.User {
	inB := make(map[string]bool, len(b))
	for _, v := range b {
		inB[v.Email] = true
	}
	common := []shop.User{}
	for _, u := range a {
		if inB[u.Email] {
			common = append(common, u)
		}
	}
	return common
}

// commonInMapOrder is a wrong answer to exercise 5: it files a by key and
// returns the customers in the map's order, which is no order at all.
func commonInMapOrder(a, b []shop.User, key func(shop.User) string) []shop.User {
	inA := make(map[string][]shop.User, len(a))
	for _, u := range a {
		inA[key(u)] = append(inA[key(u)], u)
	}
	inB := make(map[string]bool, len(b))
	for _, v := range b {
		inB[key(v)] = true
	}
	common := []shop.User{}
	for k, users := range inA {
		if inB[k] {
			common = append(common, users...)
		}
	}
	return common
}

// paymentsWithoutCheck is a wrong answer to exercise 8: the currency is a
// parameter, so no SQL gets in, but a currency the shop does not take is
// answered with no payments and no error.
func paymentsWithoutCheck(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error) {
	const paymentsInCurrency = `SELECT id, user_id, amount_cents, currency, status FROM payments
		WHERE currency = $1 ORDER BY id`
	return queryPayments(ctx, db, paymentsInCurrency, currency)
}

// paymentsQuotesDoubled is a wrong answer to exercise 8: it escapes the
// quotes by hand and pastes the currency into the SQL.
func paymentsQuotesDoubled(ctx context.Context, db *pgxpool.Pool, currency string) ([]shop.Payment, error) {
	query := `SELECT id, user_id, amount_cents, currency, status FROM payments
		WHERE currency = '` + strings.ReplaceAll(currency, "'", "''") + `' ORDER BY id`
	return queryPayments(ctx, db, query)
}

func queryPayments(ctx context.Context, db *pgxpool.Pool, query string, args ...any) ([]shop.Payment, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (shop.Payment, error) {
		var p shop.Payment
		err := row.Scan(&p.ID, &p.UserID, &p.AmountCents, &p.Currency, &p.Status)
		return p, err
	})
}

// ordersPerStatusQuery is the dashboard's query, as the naive version runs it.
const ordersPerStatusQuery = `SELECT status, count(*) FROM orders GROUP BY status`

func queryOrdersPerStatus(ctx context.Context, db *pgxpool.Pool) (map[string]int64, error) {
	rows, err := db.Query(ctx, ordersPerStatusQuery)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64)
	var status string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		counts[status] = n
		return nil
	})
	return counts, err
}

// firstContextDashboard is a wrong answer to exercise 7: singleflight.Do runs
// the shared query on the first caller's context, so when that caller leaves,
// every caller waiting on the query fails with it.
type firstContextDashboard struct {
	db      *pgxpool.Pool
	flights singleflight.Group
}

func (d *firstContextDashboard) OrdersPerStatus(ctx context.Context) (map[string]int64, error) {
	counts, err, _ := d.flights.Do("orders-per-status", func() (any, error) { return queryOrdersPerStatus(ctx, d.db) })
	if err != nil {
		return nil, err
	}
	return maps.Clone(counts.(map[string]int64)), nil
}

// sharedMapDashboard is a wrong answer to exercise 7: every caller that
// shared the query gets the same map, so one caller's change is everyone's.
type sharedMapDashboard struct {
	db      *pgxpool.Pool
	flights singleflight.Group
}

func (d *sharedMapDashboard) OrdersPerStatus(ctx context.Context) (map[string]int64, error) {
	done := d.flights.DoChan("orders-per-status", func() (any, error) {
		return queryOrdersPerStatus(context.WithoutCancel(ctx), d.db)
	})
	select {
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case result := <-done:
		if result.Err != nil {
			return nil, result.Err
		}
		return result.Val.(map[string]int64), nil
	}
}

// writeOrderItemsCSV writes the order items to out as it reads them, without
// flushing it.
func writeOrderItemsCSV(ctx context.Context, db *pgxpool.Pool, out *csv.Writer) error {
	const allItemsQuery = `SELECT order_id, line_no, product_id, quantity, price_cents
		FROM order_items ORDER BY order_id, line_no`
	rows, err := db.Query(ctx, allItemsQuery)
	if err != nil {
		return err
	}
	defer rows.Close()
	out.Write([]string{"order_id", "line_no", "product_id", "quantity", "price_cents"})
	var orderID, productID, priceCents int64
	var lineNo, quantity int32
	for rows.Next() {
		if err := rows.Scan(&orderID, &lineNo, &productID, &quantity, &priceCents); err != nil {
			return err
		}
		out.Write([]string{strconv.FormatInt(orderID, 10), strconv.Itoa(int(lineNo)), strconv.FormatInt(productID, 10),
			strconv.Itoa(int(quantity)), strconv.FormatInt(priceCents, 10)})
	}
	return rows.Err()
}

// exportThroughBuffer is a wrong answer to exercise 4: it reads the rows one
// at a time, but writes them into a buffer, and the buffer to w at the end:
// the whole file is in memory before its first byte leaves.
func exportThroughBuffer(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	var file bytes.Buffer
	out := csv.NewWriter(&file)
	if err := writeOrderItemsCSV(ctx, db, out); err != nil {
		return err
	}
	out.Flush()
	if err := out.Error(); err != nil {
		return err
	}
	_, err := file.WriteTo(w)
	return err
}

// exportWithoutFlush is a wrong answer to exercise 4: it streams, but never
// flushes the csv.Writer, whose buffer keeps the last lines.
func exportWithoutFlush(ctx context.Context, db *pgxpool.Pool, w io.Writer) error {
	return writeOrderItemsCSV(ctx, db, csv.NewWriter(w))
}

// feedWithInnerJoin is a wrong answer to exercise 1: one query, but its
// inner join drops the posts nobody has commented on.
func feedWithInnerJoin(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	const feedWithCommentsQuery = `SELECT p.id, p.author_id, p.title, p.created_at,
			u.id, u.name, u.email, u.phone, u.created_at,
			(SELECT count(*) FROM comments c WHERE c.post_id = p.id),
			c.id, c.author_id, c.body, c.created_at
		FROM (SELECT * FROM posts ORDER BY created_at DESC, id DESC LIMIT $1) p
		JOIN users u ON u.id = p.author_id
		JOIN LATERAL (
			SELECT id, author_id, body, created_at FROM comments
			WHERE post_id = p.id ORDER BY created_at DESC, id DESC LIMIT $2
		) c ON true
		ORDER BY p.created_at DESC, p.id DESC, c.created_at DESC, c.id DESC`
	return queryFeedWithComments(ctx, db, false, feedWithCommentsQuery, limit, perPost)
}

// feedCountingKeptComments is a wrong answer to exercise 1: one query, whose
// comment count is the number of comments it kept, at most perPost.
func feedCountingKeptComments(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	const feedWithCommentsQuery = `SELECT p.id, p.author_id, p.title, p.created_at,
			u.id, u.name, u.email, u.phone, u.created_at,
			count(c.id) OVER (PARTITION BY p.id),
			c.id, c.author_id, c.body, c.created_at
		FROM (SELECT * FROM posts ORDER BY created_at DESC, id DESC LIMIT $1) p
		JOIN users u ON u.id = p.author_id
		LEFT JOIN LATERAL (
			SELECT id, author_id, body, created_at FROM comments
			WHERE post_id = p.id ORDER BY created_at DESC, id DESC LIMIT $2
		) c ON true
		ORDER BY p.created_at DESC, p.id DESC, c.created_at DESC, c.id DESC`
	return queryFeedWithComments(ctx, db, false, feedWithCommentsQuery, limit, perPost)
}

// feedScanningPhoneIntoString is a wrong answer to exercise 1: the right
// query, but the author's phone scanned into a string, as if it could not be
// NULL; it fails on the first author who gave none.
func feedScanningPhoneIntoString(ctx context.Context, db *pgxpool.Pool, limit, perPost int) ([]shop.FeedPostWithComments, error) {
	const feedWithCommentsQuery = `SELECT p.id, p.author_id, p.title, p.created_at,
			u.id, u.name, u.email, u.phone, u.created_at,
			(SELECT count(*) FROM comments c WHERE c.post_id = p.id),
			c.id, c.author_id, c.body, c.created_at
		FROM (SELECT * FROM posts ORDER BY created_at DESC, id DESC LIMIT $1) p
		JOIN users u ON u.id = p.author_id
		LEFT JOIN LATERAL (
			SELECT id, author_id, body, created_at FROM comments
			WHERE post_id = p.id ORDER BY created_at DESC, id DESC LIMIT $2
		) c ON true
		ORDER BY p.created_at DESC, p.id DESC, c.created_at DESC, c.id DESC`
	return queryFeedWithComments(ctx, db, true, feedWithCommentsQuery, limit, perPost)
}

// queryFeedWithComments runs a feed query whose rows are a post, its author,
// its comment count and one of its comments (NULL for none), and puts the
// rows back together. With phoneAsString it scans the author's phone into a
// string instead of a *string.
func queryFeedWithComments(ctx context.Context, db *pgxpool.Pool, phoneAsString bool, query string, args ...any) ([]shop.FeedPostWithComments, error) {
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	feed := []shop.FeedPostWithComments{}
	for rows.Next() {
		var item shop.FeedPostWithComments
		p, a := &item.Post, &item.Author
		var commentID, commentAuthorID *int64
		var body *string
		var commentedAt *time.Time
		var phone string
		phoneDest := any(&a.Phone)
		if phoneAsString {
			phoneDest = &phone
		}
		err := rows.Scan(&p.ID, &p.AuthorID, &p.Title, &p.CreatedAt, &a.ID, &a.Name, &a.Email, phoneDest, &a.CreatedAt, &item.CommentCount,
			&commentID, &commentAuthorID, &body, &commentedAt)
		if err != nil {
			return nil, err
		}
		if phoneAsString {
			a.Phone = &phone
		}
		if n := len(feed); n == 0 || feed[n-1].Post.ID != p.ID {
			item.LatestComments = []shop.Comment{}
			feed = append(feed, item)
		}
		if commentID != nil {
			last := &feed[len(feed)-1]
			last.LatestComments = append(last.LatestComments, shop.Comment{ID: *commentID, PostID: p.ID, AuthorID: *commentAuthorID, Body: *body, CreatedAt: *commentedAt})
		}
	}
	return feed, rows.Err()
}

// poolsWithoutDeadlines is a wrong answer to exercise 11: a pool per
// workload, but no deadline, so a stuck search waits as long as its caller.
type poolsWithoutDeadlines struct {
	orders, search, payments *naivebulkhead.Shop
	pools                    []*pgxpool.Pool
}

func newPoolsWithoutDeadlines(db *pgxpool.Pool) (*poolsWithoutDeadlines, error) {
	s := &poolsWithoutDeadlines{}
	var shops []*naivebulkhead.Shop
	for _, size := range []int32{4, 2, 2} {
		cfg := db.Config()
		cfg.MaxConns = size
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.pools = append(s.pools, pool)
		served, err := naivebulkhead.New(pool)
		if err != nil {
			s.Close()
			return nil, err
		}
		shops = append(shops, served)
	}
	s.orders, s.search, s.payments = shops[0], shops[1], shops[2]
	return s, nil
}

func (s *poolsWithoutDeadlines) RecentOrders(ctx context.Context, userID int64) ([]shop.Order, error) {
	return s.orders.RecentOrders(ctx, userID)
}

func (s *poolsWithoutDeadlines) SearchProducts(ctx context.Context, term string) ([]shop.Product, error) {
	return s.search.SearchProducts(ctx, term)
}

func (s *poolsWithoutDeadlines) UserPayments(ctx context.Context, userID int64) ([]shop.Payment, error) {
	return s.payments.UserPayments(ctx, userID)
}

func (s *poolsWithoutDeadlines) Close() {
	for _, pool := range s.pools {
		pool.Close()
	}
}

// unclosingShop is a wrong answer to exercise 11: the lesson's bulkheads,
// whose Close forgets the pools they opened.
type unclosingShop struct{ *scalablebulkhead.Shop }

func (unclosingShop) Close() {}

// alwaysClosed is a wrong answer to exercise 10, as the lesson's Payments'
// guard: no breaker, so every payment waits out its timeout on a hung
// gateway before it is queued.
type alwaysClosed struct{}

func (alwaysClosed) Do(ctx context.Context, op func(ctx context.Context) error) error { return op(ctx) }

func (alwaysClosed) State() scalablebreaker.State { return scalablebreaker.Closed }

// breakerOnlyPayments is a wrong answer to exercise 10: a breaker in front of
// the gateway, and no outbox, so a payment the breaker stops is lost.
type breakerOnlyPayments struct {
	db      *pgxpool.Pool
	gateway *gateway.Client
	timeout time.Duration
	breaker *scalablebreaker.Breaker
}

func (p *breakerOnlyPayments) Pay(ctx context.Context, key string, req gateway.ChargeRequest) (shop.Payment, error) {
	var charge gateway.Charge
	err := p.breaker.Do(ctx, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		var err error
		charge, err = p.gateway.Charge(ctx, req, key)
		return err
	})
	if err != nil {
		return shop.Payment{}, fmt.Errorf("pay %s: %w", req.Reference, err)
	}
	const insertPayment = `
		INSERT INTO payments (idempotency_key, reference, user_id, amount_cents, currency, status, charge_id)
		VALUES ($1, $2, $3, $4, $5, 'charged', $6) RETURNING id`
	payment := shop.Payment{UserID: req.UserID, AmountCents: req.AmountCents, Currency: req.Currency, Status: shop.PaymentCharged, ChargeID: charge.ID}
	err = p.db.QueryRow(ctx, insertPayment, key, req.Reference, req.UserID, req.AmountCents, req.Currency, charge.ID).Scan(&payment.ID)
	if err != nil {
		return shop.Payment{}, fmt.Errorf("record payment %s: %w", req.Reference, err)
	}
	return payment, nil
}
