// Package augment implements the augment stage kind: the notebook's Keras
// ImageDataGenerator transforms (rescale, shear, zoom, rotation, width and
// height shift, horizontal flip, fill mode nearest, constant, reflect or
// wrap, target size) as one exported, JSON-serialisable Policy.
//
// Policy.Apply resizes an image to the target size, then warps it by one
// affine map about the centre (rotation x shear x zoom, plus a shift),
// computed by inverse mapping with bilinear sampling and the fill mode
// outside the source, then flips it with probability 1/2. Angles are in
// degrees; zoom_range z draws each axis's factor from [1-z, 1+z].
//
// rescale is accepted, so that the notebook's settings read as they are,
// and ignored: the train stage scales and normalises pixels by the
// model's own preprocessing (its metadata, or train's normalize). It is
// not in the policy nor in the run key, so changing it reruns nothing.
//
// Modes:
//
//   - online: outputs policy (augment-policy, a one-row table holding the
//     JSON) for the train stage, which reads it with ReadPolicy and calls
//     Apply per image with a generator seeded per epoch; images is an
//     empty images table.
//   - materialise: input samples (a samples table, whose files are loaded
//     and cropped to their box grown by margin, or an images table); the
//     images output holds, per row, the original resized (keep_original)
//     and K = copies augmented copies keyed IMAGE#aug1 .. IMAGE#augK. Copy
//     k of row i uses a generator seeded by (seed, i, k); copies is 1 to
//     1000. The table is written batch by batch, so memory stays bounded
//     by the input and one batch, whatever the copies. on_bad_image: skip
//     logs and leaves out unreadable images. A materialise stage without
//     the samples input is an error when the pipeline loads.
//
// Both modes output preview, a PNG contact sheet (kind report): per sample
// one row with the original and four augmented copies, like the
// notebook's save_to_dir; without samples it augments a test card.
package augment
