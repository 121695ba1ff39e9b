// Package artifacts is the content-addressed store of stitch and the schemas
// of the Arrow tables that stages exchange.
//
// An artifact is an immutable byte string, almost always an Arrow IPC file,
// named by the SHA-256 of its bytes (an ID). Objects live under
// ROOT/objects/ab/cdef..., are written to a temporary file, synced and renamed
// into place, and are re-hashed when read: a mismatch is reported as
// ErrCorrupt and the caller treats it as a cache miss.
//
// The package imports none of the project's other packages.
package artifacts
