package train

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"stitch/artifacts"
)

// checkpointFile is the name of the checkpoint in Config.Workdir.
const checkpointFile = "train.ckpt"

// checkpointMagic starts every checkpoint; the digit is the format version.
// Version 3 ends with the SHA-256 of everything before it.
const checkpointMagic = "stitch-train-checkpoint 3\n"

// errBadCheckpoint marks a checkpoint file that cannot be used: of another
// format version, truncated, or with bytes that do not match its checksum.
var errBadCheckpoint = errors.New("damaged or of another version")

// progress is the trainer's state between epochs: everything a resumed run
// needs to continue exactly as an uninterrupted one would. The random
// state is not stored because it is derived: each epoch's shuffle and
// augmentation are seeded from (seed, phase, epoch) alone.
type progress struct {
	// Fingerprint identifies the configuration; a checkpoint of another
	// one is ignored.
	Fingerprint string
	// Phase is the index of the phase in progress; Epoch the epochs it
	// has completed; Steps the optimizer steps it has taken.
	Phase, Epoch int
	Steps        int64
	// Done says the phase stopped early and the next one has not begun.
	Done bool
	LR   float64
	// BestValLoss, Wait and LRWait drive early stopping and the learning
	// rate reduction within the phase.
	BestValLoss  float64
	Wait, LRWait int
	// HasBest, Best, BestPhase and BestEpoch describe the kept checkpoint,
	// across phases.
	HasBest              bool
	Best                 float64
	BestPhase, BestEpoch int
	History              []artifacts.Epoch
}

// checkpoint is a progress and the tensors that go with it.
type checkpoint struct {
	progress
	// Weights are the current values of every parameter trained in any
	// phase; States the optimizer state of the phase in progress; BestWeights
	// the kept checkpoint's parameters.
	Weights, States, BestWeights map[string][]float32
}

// header is the gob-encoded part of a checkpoint file (gob, unlike JSON,
// keeps a NaN metric of the history); the tensors follow it, raw
// little-endian float32 in the order listed, then the checksum.
type header struct {
	// Progress is a named field: gob skips embedded fields of unexported
	// types, which once made every checkpoint forget its configuration.
	Progress progress
	Tensors  []tensorEntry
}

type tensorEntry struct {
	Group string
	Name  string
	Len   int
}

// writeCheckpoint writes ck to dir atomically: to a temporary file that
// is synced and then renamed, so a crash leaves the previous checkpoint.
func writeCheckpoint(dir string, ck *checkpoint) (err error) {
	path := filepath.Join(dir, checkpointFile)
	h := header{Progress: ck.progress}
	groups := []struct {
		name string
		m    map[string][]float32
	}{{"weights", ck.Weights}, {"states", ck.States}, {"best", ck.BestWeights}}
	for _, g := range groups {
		for _, name := range sortedKeys(g.m) {
			h.Tensors = append(h.Tensors, tensorEntry{Group: g.name, Name: name, Len: len(g.m[name])})
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(h); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", path, err)
	}
	meta := buf.Bytes()

	f, err := os.CreateTemp(dir, checkpointFile+".tmp*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()           // the write already failed; this error adds nothing
			os.Remove(f.Name()) // best effort: a stray temporary file is harmless
		}
	}()
	buffered := bufio.NewWriterSize(f, 1<<20)
	sum := sha256.New()
	w := io.MultiWriter(buffered, sum)
	if _, err := io.WriteString(w, checkpointMagic); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", f.Name(), err)
	}
	if err := binary.Write(w, binary.LittleEndian, uint64(len(meta))); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", f.Name(), err)
	}
	if _, err := w.Write(meta); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", f.Name(), err)
	}
	for _, t := range h.Tensors {
		m := ck.Weights
		switch t.Group {
		case "states":
			m = ck.States
		case "best":
			m = ck.BestWeights
		}
		if err := binary.Write(w, binary.LittleEndian, m[t.Name]); err != nil {
			return fmt.Errorf("write checkpoint %s: %w", f.Name(), err)
		}
	}
	if _, err := buffered.Write(sum.Sum(nil)); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", f.Name(), err)
	}
	if err := buffered.Flush(); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", f.Name(), err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// readCheckpoint reads the checkpoint in dir; it returns nil, nil when
// there is none, and an error wrapping errBadCheckpoint when the file is
// not a whole, intact checkpoint of this version.
func readCheckpoint(dir string) (*checkpoint, error) {
	path := filepath.Join(dir, checkpointFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	defer f.Close() // read only: a close error loses nothing
	ck, err := decodeCheckpoint(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w: %w", path, errBadCheckpoint, err)
	}
	return ck, nil
}

// decodeCheckpoint reads a whole checkpoint from src and checks its sum.
func decodeCheckpoint(src io.Reader) (*checkpoint, error) {
	sum := sha256.New()
	r := io.TeeReader(src, sum)
	magic := make([]byte, len(checkpointMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != checkpointMagic {
		return nil, fmt.Errorf("not a checkpoint of this version")
	}
	var n uint64
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil || n > 1<<30 {
		return nil, fmt.Errorf("bad header length")
	}
	meta := make([]byte, n)
	if _, err := io.ReadFull(r, meta); err != nil {
		return nil, err
	}
	var h header
	if err := gob.NewDecoder(bytes.NewReader(meta)).Decode(&h); err != nil {
		return nil, err
	}
	ck := &checkpoint{
		progress: h.Progress,
		Weights:  map[string][]float32{}, States: map[string][]float32{}, BestWeights: map[string][]float32{},
	}
	for _, t := range h.Tensors {
		if t.Len < 0 || t.Len > 1<<31 {
			return nil, fmt.Errorf("tensor %s: bad length %d", t.Name, t.Len)
		}
		v := make([]float32, t.Len)
		if err := binary.Read(r, binary.LittleEndian, v); err != nil {
			return nil, fmt.Errorf("tensor %s: %w", t.Name, err)
		}
		switch t.Group {
		case "weights":
			ck.Weights[t.Name] = v
		case "states":
			ck.States[t.Name] = v
		case "best":
			ck.BestWeights[t.Name] = v
		default:
			return nil, fmt.Errorf("unknown tensor group %q", t.Group)
		}
	}
	want := sum.Sum(nil)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(src, got); err != nil {
		return nil, fmt.Errorf("checksum: %w", err)
	}
	if !bytes.Equal(got, want) {
		return nil, fmt.Errorf("checksum mismatch")
	}
	if _, err := src.Read(make([]byte, 1)); err != io.EOF {
		return nil, fmt.Errorf("bytes after the checksum")
	}
	return ck, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
