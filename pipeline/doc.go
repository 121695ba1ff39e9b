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
//	    needs: {model: train.model}   # fans out: eval[vgg16,0.6], ... see below
//
// `with:` is decoded strictly into the kind's NewParams() struct (yaml
// tags); unknown keys name the closest valid one. A kind's Validate may
// return *ParamError values (joined with errors.Join when there are
// several): each is reported at the line of the key it names, dotted for
// a nested one (phase2.batch_size), and any other error at `with:`.
// Anchors and merge keys are expanded before anything else, so they hash
// like the expanded text. ${name} is replaced in `with:` and `needs:`
// strings; an undefined name is an error; "$${" is a literal "${".
//
// # Matrices and names
//
// `matrix: {k1: [...], k2: [...]}` makes the cartesian product; keys are
// sorted, the first varies slowest, and each variant is named
// base[v1,v2] with the values in key order, e.g. train[vgg16,0.6].
// `matrix: {include: [{name: A, lr: 0.01}, ...]}` makes one variant per
// entry named base-A. Each matrix key sets the parameter of the same name
// and is available as ${matrix.key}. A mapping value is merged into the
// parameter's mapping in `with:`, key by key at every depth, so
// `matrix: {phase1: [{max_epochs: 1}]}` keeps the phase's other settings.
//
// A value is spelled in a name as written, except lists: a list of one
// scalar is that scalar ([32] -> 32) and a list of numbers joins them
// with "x" ([32, 64] -> 32x64), which no decimal number contains; a
// mapping of plain scalars spells each leaf by its path from the matrix
// key (phase1: {max_epochs: 1} -> phase1.max_epochs=1); other lists and
// mappings keep their flow YAML ([relu, tanh]). Values are spelled after
// ${param} substitution. When two values
// of one key would spell alike that way ([32] and 32), all the key's
// values keep their flow YAML, so names never collide.
//
// # Binding and fan-out
//
// A reference by full name (train[vgg16,0.6].model) binds that variant.
// A reference to a matrix stage by its base name binds, in order of
// precedence:
//
//   - the variant with equal values, when the consumer's variant has
//     every matrix key of the producer (its own matrix over the same keys
//     or more, or keys it inherited by fanning out);
//   - on an input that takes one artifact (not Many): one consumer
//     variant per producer variant, the consumer fanning out. Each
//     inherits the producer variant's values for binding only (they set
//     no parameter and are no ${matrix.key}), so a stage downstream fans
//     out in turn and binds the matching variant: train -> predict ->
//     evaluate all run per variant;
//   - on a Many input: every variant, in expansion order.
//
// A fanned-out variant is named like the variant it came from:
// predict[32] from train[32], use-A from alt-A. Its name lists all of
// its values, own and inherited, by the matrix rule (an include name as
// -A first, then the others in sorted key order in brackets), so
// evaluate[32,3] holds the inherited head 32 and evaluate's own k 3.
// Own variants vary slowest, then the producers' in order of input name.
// A stage fanning out over two producers with different keys gets their
// product (pair[1,x], pair[1,y], ...); over keys they share, only the
// combinations that agree; none agreeing is an error.
//
// A consumer's own matrix key that is no parameter of its kind is
// accepted when a producer it names varies over that key: it then only
// selects the variant to bind, as a repeated matrix did before fan-out.
//
// # Run keys and the cache
//
// A run key is the SHA-256 of the canonical JSON of {kind, version,
// params, input ids by input name, the producer names of list inputs,
// seed, external fingerprints}. Params
// are decoded into the kind's struct and encoded again, so spelling and
// key order do not matter; Settings are not in the key. The seed of a
// stage derives from params.seed and its full name. A run key's cache
// entry names its outputs; a hit needs every output present and hashing
// to its id. Objects already verified are remembered by size, mtime,
// ctime and inode (verified.json), so a no-op run re-hashes only what
// changed; ctime cannot be set back by user tools, so a tampered object
// is always re-hashed. External files are remembered the same way by
// (size, mtime, ctime, inode) per path under .stitch/fp, with each
// folder's own stat and list of entries: a folder whose stat did not
// change is not listed again, but every file in it is still stat'ed, so
// a file rewritten in place is seen by its mtime or ctime.
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
