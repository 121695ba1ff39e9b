package artifacts

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// ErrNotFound reports that the store holds no object with the requested ID.
var ErrNotFound = errors.New("artifact not found")

// ErrCorrupt reports that an object's bytes no longer hash to its ID.
var ErrCorrupt = errors.New("artifact corrupt")

// Store is a content-addressed object store rooted at a directory (usually
// WORKSPACE/.stitch). It is safe for concurrent use by several goroutines
// and several processes: objects are immutable and appear by atomic rename.
type Store struct {
	root   string
	logger *slog.Logger
	// readOnly stores report corrupt objects but leave them in place:
	// commands that promise to change nothing (show, status) use one.
	readOnly bool
}

// OpenStore opens (creating if needed) the store under root.
func OpenStore(root string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(root, "objects"), 0o755); err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	return &Store{root: root, logger: logger}, nil
}

// OpenStoreReadOnly opens an existing store for reading only: a corrupt
// object is reported as ErrCorrupt but not removed. It creates nothing.
func OpenStoreReadOnly(root string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if _, err := os.Stat(filepath.Join(root, "objects")); err != nil {
		return nil, fmt.Errorf("open store %s: %w", root, err)
	}
	return &Store{root: root, logger: logger, readOnly: true}, nil
}

// Root returns the directory the store lives in.
func (s *Store) Root() string { return s.root }

// Path returns where the object id lives (whether or not it exists).
func (s *Store) Path(id ID) string {
	hexID := id.String()
	return filepath.Join(s.root, "objects", hexID[:2], hexID[2:])
}

// Write stores what write produces and returns its ID. The bytes go to a
// temporary file that is synced and renamed into place only when write
// succeeds, so a failed or interrupted write leaves no object behind.
func (s *Store) Write(write func(w io.Writer) error) (ID, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.root, "tmp"), "object-*")
	if err != nil {
		return ID{}, fmt.Errorf("create object: %w", err)
	}
	// Removing is a no-op once the file has been renamed into place.
	defer os.Remove(tmp.Name())

	hasher := sha256.New()
	if err := write(io.MultiWriter(tmp, hasher)); err != nil {
		tmp.Close()
		return ID{}, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return ID{}, fmt.Errorf("sync object: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return ID{}, fmt.Errorf("close object: %w", err)
	}
	return s.install(tmp.Name(), hasher)
}

func (s *Store) install(tmpName string, hasher hash.Hash) (ID, error) {
	var id ID
	copy(id[:], hasher.Sum(nil))
	final := s.Path(id)
	if _, err := os.Stat(final); err == nil {
		// Same content already present: keep the existing object.
		return id, nil
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return ID{}, fmt.Errorf("store object %s: %w", id.Short(), err)
	}
	if err := os.Chmod(tmpName, 0o444); err != nil {
		return ID{}, fmt.Errorf("store object %s: %w", id.Short(), err)
	}
	if err := os.Rename(tmpName, final); err != nil {
		return ID{}, fmt.Errorf("store object %s: %w", id.Short(), err)
	}
	return id, nil
}

// Put stores data and returns its ID.
func (s *Store) Put(data []byte) (ID, error) {
	return s.Write(func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Get returns the bytes of object id after re-hashing them. A mismatch
// logs a warning, removes the object and returns ErrCorrupt, so callers
// recompute it; a missing object returns ErrNotFound.
func (s *Store) Get(id ID) ([]byte, error) {
	data, err := os.ReadFile(s.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read object %s: %w", id.Short(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read object %s: %w", id.Short(), err)
	}
	if Sum(data) != id {
		s.discard(id)
		return nil, fmt.Errorf("read object %s: %w", id.Short(), ErrCorrupt)
	}
	return data, nil
}

// Verify re-hashes object id without keeping its bytes. It returns nil,
// ErrNotFound or ErrCorrupt (after removing the corrupt object).
func (s *Store) Verify(id ID) error {
	f, err := os.Open(s.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("verify object %s: %w", id.Short(), ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("verify object %s: %w", id.Short(), err)
	}
	defer f.Close()
	hasher := sha256.New()
	if _, err := io.Copy(hasher, f); err != nil {
		return fmt.Errorf("verify object %s: %w", id.Short(), err)
	}
	if !bytes.Equal(hasher.Sum(nil), id[:]) {
		s.discard(id)
		return fmt.Errorf("verify object %s: %w", id.Short(), ErrCorrupt)
	}
	return nil
}

// Has reports whether an object file for id exists, without re-hashing it.
func (s *Store) Has(id ID) bool {
	_, err := os.Stat(s.Path(id))
	return err == nil
}

func (s *Store) discard(id ID) {
	if s.readOnly {
		s.logger.Warn("object does not match its hash; the next stitch run recomputes it",
			"object", id.String())
		return
	}
	s.logger.Warn("object does not match its hash; discarding it, it will be recomputed",
		"object", id.String())
	if err := os.Remove(s.Path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.logger.Warn("remove corrupt object", "object", id.String(), "err", err)
	}
}
