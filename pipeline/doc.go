// Package pipeline loads stitch's YAML pipelines, validates them, and runs
// their stages in a workspace, reusing every stage whose inputs did not
// change.
//
// # Contract with stage kinds
//
// A stage kind implements Kind (kind.go) and is registered in a Registry
// built by the binary (cmd/stitch/kinds.go is the one place that lists
// them). pipeline never imports a stage package. A kind may also be an
// ExternalReader (its files outside the store are fingerprinted into the
// run key) and a Reporter (it prints results after a run).
//
// # Pipeline files
//
//	name: coarse                      # default: the file's base name
//	params: {data: /data/df, seed: 1} # overridable: --set data=/x (YAML scalars)
//	stages:
//	  split:
//	    uses: partitions
//	    with: {root: "${data}"}       # a whole-string ${x} keeps x's type
//	  train:
//	    uses: train
//	    needs: {train: split.train}   # or a list, for Many inputs
//	    matrix: {backbone: [vgg16, resnet50], freeze_ratio: [0.6, 0.8]}
//	  eval:
//	    uses: evaluate
//	    needs: {model: train.model}   # binds the matching variant, see below
//	    matrix: {backbone: [vgg16, resnet50], freeze_ratio: [0.6, 0.8]}
//
// `with:` is decoded strictly into the kind's NewParams() struct (yaml
// tags); unknown keys name the closest valid one. Anchors and merge keys
// are expanded before anything else, so they hash like the expanded text.
// ${name} is replaced in `with:` and `needs:` strings; an undefined name
// is an error; "$${" is a literal "${".
//
// # Matrices and names
//
// `matrix: {k1: [...], k2: [...]}` makes the cartesian product; keys are
// sorted, the first varies slowest, and each variant is named
// base[v1,v2] with the values in key order, e.g. train[vgg16,0.6].
// `matrix: {include: [{name: A, lr: 0.01}, ...]}` makes one variant per
// entry named base-A. Each matrix key sets the parameter of the same name
// and is available as ${matrix.key}. A reference to a matrix stage by its
// base name binds the variant with equal values when the consumer is a
// matrix stage over the same keys (or more), and every variant in
// expansion order otherwise, which only a Many input accepts. A full name
// (train[vgg16,0.6].model) binds that variant.
//
// # Run keys and the cache
//
// A run key is the SHA-256 of the canonical JSON of {kind, version,
// params, input ids by input name, seed, external fingerprints}. Params
// are decoded into the kind's struct and encoded again, so spelling and
// key order do not matter; Settings are not in the key. The seed of a
// stage derives from params.seed and its full name. A run key's cache
// entry names its outputs; a hit needs every output present and hashing
// to its id. Objects already verified are remembered by size, mtime,
// ctime and inode (verified.json), so a no-op run re-hashes only what
// changed; ctime cannot be set back by user tools, so a tampered object
// is always re-hashed. External files are remembered the same way by
// (size, mtime, inode) per path under .stitch/fp.
//
// # Concurrency
//
// Stages run in an errgroup bounded by Options.Jobs; a stage is
// dispatched only when its producers are done. Processes share a
// workspace safely: every file is written to a temporary name, synced and
// renamed; a stage runs under an flock on its run key, so a second
// process waits and then finds the cache hit; `gc` holds the workspace
// lock exclusively while runs hold it shared. Locks die with their
// process, so a killed run leaves nothing to clean by hand: its work
// folder (.stitch/work/<key>) survives for the next attempt to resume.
//
// Status and dry runs write nothing at all.
package pipeline
