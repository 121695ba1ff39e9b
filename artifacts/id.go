package artifacts

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// ID names an artifact: the SHA-256 of its bytes.
type ID [32]byte

// Sum returns the ID of data.
func Sum(data []byte) ID { return ID(sha256.Sum256(data)) }

// String returns the ID as 64 lower-case hex digits.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short returns the first 12 hex digits, for people.
func (id ID) Short() string { return id.String()[:12] }

// IsZero reports whether id is the zero value (no artifact).
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses 64 hex digits.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("parse artifact id %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("parse artifact id %q: %w", s, err)
	}
	return id, nil
}

// MarshalText encodes the ID as hex, so IDs read well in JSON records.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText decodes a hex ID.
func (id *ID) UnmarshalText(b []byte) error {
	parsed, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = parsed
	return nil
}
