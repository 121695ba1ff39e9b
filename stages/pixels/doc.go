// Package pixels loads images for training and inference and turns them
// into what a network eats: one decoding path shared by the partitions,
// augment, train and predict stages, so that an image reads the same
// everywhere.
//
// Load decodes JPEG and PNG (and, through the decoders imaging registers,
// GIF, BMP and TIFF), including greyscale, CMYK and YCCK JPEG, and
// paletted or alpha PNG. Transparent pixels are composited on white,
// since product photos are shot on white and black would read as a
// garment colour. The EXIF orientation of a JPEG is applied. The declared
// size is checked against MaxPixels before any pixel is decoded, so a
// small file declaring a huge image cannot exhaust memory. Every error
// names the file.
//
// Images are *image.NRGBA with opaque pixels and origin (0, 0).
package pixels
