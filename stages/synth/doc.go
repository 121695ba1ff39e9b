// Package synth draws a synthetic DeepFashion-like dataset, for the demo
// pipeline and for tests that need images with learnable labels.
//
// Generate writes, into one folder, img/synth_NNNNNN.jpg and the
// annotations in both DeepFashion layouts: Anno/ and Eval/ (coarse, with
// categories, boxes and landmarks) and Anno_fine/ (fine). Each image is a
// garment on a light background: a top, a jacket, a dress, a skirt or
// trousers. 25 attributes in 7 groups, exactly one value per applicable
// group, all drawn big enough to be read at 64 x 64 pixels:
//
//   - texture (type 1): solid, striped, dotted, checked, floral (five-petal
//     flowers), graphic (one large star on the chest);
//   - fabric (type 2), told by the colour family: denim blue, leather near
//     black, knit red-orange, chiffon pink-lilac;
//   - fit (type 3): tight, regular, loose (the garment's width);
//   - sleeve, length, neckline (type 4): sleeveless, short or long sleeves
//     (tops, jackets, dresses); mini, midi or maxi (dresses, skirts,
//     trousers); crew, v or square neckline cut out in skin colour (tops,
//     jackets, dresses). A group that does not apply is absent (-1);
//   - style (type 5): casual (no cue), formal (a row of gold buttons),
//     sporty (two bands across the garment).
//
// Categories (Tee, Jacket, Dress, Skirt, Pants), bounding boxes and
// landmarks come from the drawing geometry. A fraction of the coarse
// labels (UnknownFraction, default 3 %) is written 0 (unknown); the fine
// layout, which has no unknown, writes them 0 (absent) as well. In the
// fine layout the group ids are the group's position (texture 1, sleeve 2,
// length 3, neckline 4, fabric 5, fit 6, style 7). Partitions are 70 / 15
// / 15 % in image order.
//
// Images are drawn in parallel, each from a generator seeded by (seed,
// image index), so the folder depends on the options only.
//
// The synth stage kind runs Generate with its parameters (out, n, seed,
// size, unknown_fraction) and outputs a manifest table.
package synth
