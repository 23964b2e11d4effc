// Package strictjson decodes JSON strictly, as a service should read what a
// client sends and a cache should read what it stored: one value, valid
// UTF-8, every member of an object named exactly as a field's json tag, and
// no member twice.
//
// encoding/json is lenient on each of these: it matches a member to a field
// case-insensitively (even with DisallowUnknownFields, "AMOUNT_CENTS" fills
// amount_cents), lets the last of two equal members win (so
// {"amount_cents":1,"amount_cents":999999} is 999999 to the decoder and may
// be 1 to whatever checked the body before it), replaces invalid UTF-8 with
// U+FFFD, and leaves a field untouched for a null. Go 1.26's encoding/json/v2
// refuses the first three by default, but only in a build with
// GOEXPERIMENT=jsonv2. Until it is the default, Unmarshal walks the tokens of
// encoding/json's Decoder beside the type of the value decoded into, and
// refuses what encoding/json would let through; then encoding/json decodes.
// Nothing here parses JSON itself.
package strictjson

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"

	"works-vs-scales/shop"
)

// ErrInvalid is wrapped by every error Unmarshal returns for data that is
// not the JSON asked for.
var ErrInvalid = errors.New("invalid JSON")

// MaxDepth is how deeply Unmarshal lets arrays and objects nest. The
// shop's types nest three deep; encoding/json allows 10,000.
const MaxDepth = 32

// Unmarshal decodes data, one JSON value, into v, a non-nil pointer, as
// json.Unmarshal with the decoder's DisallowUnknownFields would, and
// refuses, with an error wrapping ErrInvalid: data that is not valid UTF-8
// or holds anything after the value; a member of an object decoded into a
// struct that is not named exactly as one of its fields (json tags, or the
// Go name of a field without one), in case too; a member twice in any
// object; a null where v's type has no null (anything but a pointer, slice,
// map or interface); nesting deeper than MaxDepth; and a value of the wrong
// JSON type. The errors name the member by its path (amount_cents,
// items[2].quantity) and quote at most shop.QuoteMax bytes of the input.
// A type that decodes itself (json.Unmarshaler, encoding.TextUnmarshaler)
// is checked for members twice, and left to its own method for the rest.
func Unmarshal(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("strictjson: decode into %T: want a non-nil pointer", v)
	}
	if !utf8.Valid(data) {
		return fmt.Errorf("not UTF-8: %w", ErrInvalid)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := walk(dec, rv.Type().Elem(), "", 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("more than one JSON value: %w", ErrInvalid)
	}
	dec = json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			return fmt.Errorf("%s: a JSON %s: want %s: %w", name(typeErr.Field), typeErr.Value, kindOf(typeErr.Type), ErrInvalid)
		}
		return fmt.Errorf("%v: %w", err, ErrInvalid) // not reached: walk has read every token
	}
	return nil
}

// Decode reads r to its end and decodes it as Unmarshal does.
func Decode(r io.Reader, v any) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	return Unmarshal(data, v)
}

// walk reads the next JSON value from dec, checking it against t, the Go
// type it is to be decoded into (nil: anything); path names it in errors,
// depth is how deep it is nested.
func walk(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	tok, err := dec.Token()
	if err == io.EOF {
		return fmt.Errorf("no JSON value: %w", ErrInvalid)
	}
	if err != nil {
		return fmt.Errorf("%s%v: %w", at(path), err, ErrInvalid)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		if tok == nil {
			return nil // a nil pointer
		}
		t = t.Elem()
	}
	if t != nil && decodesItself(t) {
		t = nil // its own method reads it: look for members twice only
	}
	if tok == json.Delim('{') || tok == json.Delim('[') {
		if depth++; depth > MaxDepth {
			return fmt.Errorf("%snested more than %d deep: %w", at(path), MaxDepth, ErrInvalid)
		}
	}
	switch tok {
	case nil:
		if t == nil {
			return nil
		}
		switch t.Kind() {
		case reflect.Slice, reflect.Map, reflect.Interface:
			return nil
		}
		return fmt.Errorf("%snull: want %s: %w", at(path), kindOf(t), ErrInvalid)
	case json.Delim('{'):
		return walkObject(dec, t, path, depth)
	case json.Delim('['):
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := walk(dec, elem, fmt.Sprintf("%s[%d]", path, i), depth); err != nil {
				return err
			}
		}
		return closing(dec, path)
	}
	return nil // a scalar: encoding/json checks its type
}

// closing reads the ] or } that ends an array or object.
func closing(dec *json.Decoder, path string) error {
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%s%v: %w", at(path), err, ErrInvalid)
	}
	return nil
}

// decodesItself reports whether a value of type t, or a pointer to one,
// decodes its own JSON.
func decodesItself(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(unmarshaler) || pt.Implements(unmarshaler) ||
		t.Implements(textUnmarshaler) || pt.Implements(textUnmarshaler)
}

var (
	unmarshaler     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// walkObject reads the members of an object whose { dec has read, up to its
// }, checking each name against t's fields if t is a struct, and refusing a
// name twice.
func walkObject(dec *json.Decoder, t reflect.Type, path string, depth int) error {
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = fieldsOf(t)
	}
	seen := make(map[string]bool)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%s%v: %w", at(path), err, ErrInvalid)
		}
		member := tok.(string) // an object's keys are strings, or Token fails
		memberPath := member
		if path != "" {
			memberPath = path + "." + member
		}
		if seen[member] {
			return fmt.Errorf("%s twice: %w", name(memberPath), ErrInvalid)
		}
		seen[member] = true
		var valueType reflect.Type // an interface's members, or a type that decodes itself: anything
		switch {
		case fields != nil:
			ft, ok := fields[member]
			if !ok {
				return fmt.Errorf("unknown member %s%s: %w", name(memberPath), suggest(fields, member), ErrInvalid)
			}
			valueType = ft
		case t != nil && t.Kind() == reflect.Map:
			valueType = t.Elem()
		}
		if err := walk(dec, valueType, memberPath, depth); err != nil {
			return err
		}
	}
	return closing(dec, path)
}

// fieldsOf returns the JSON names of t's fields, as encoding/json names them
// (the json tag's name, else the Go name; none for "-" or an unexported
// field), with the fields of an embedded struct without a tag among them.
func fieldsOf(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type)
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == "-" && f.Tag.Get("json") == "-" {
			continue
		}
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && tag == "" && ft.Kind() == reflect.Struct {
			for name, inner := range fieldsOf(ft) {
				if _, ok := fields[name]; !ok {
					fields[name] = inner
				}
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = f.Name
		}
		fields[tag] = f.Type
	}
	return fields
}

// suggest returns ` (did you mean "x"?)` for a member that names a field
// but for its case, and "" otherwise.
func suggest(fields map[string]reflect.Type, member string) string {
	for field := range fields {
		if strings.EqualFold(field, member) {
			return fmt.Sprintf(" (did you mean %s?)", shop.Quote(field))
		}
	}
	return ""
}

// name quotes a member's path for an error message.
func name(path string) string {
	if path == "" {
		return "the value"
	}
	return shop.Quote(path)
}

// at prefixes an error message with the path it is about, if any.
func at(path string) string {
	if path == "" {
		return ""
	}
	return shop.Quote(path) + ": "
}

// kindOf says what JSON a Go type is decoded from.
func kindOf(t reflect.Type) string {
	if t == reflect.TypeFor[json.RawMessage]() {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer of 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a JSON value"
}
