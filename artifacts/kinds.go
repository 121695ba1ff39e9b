package artifacts

// Artifact kinds, recorded under MetaKind in each table's schema metadata
// and declared by stage ports.
const (
	KindAttributes  = "attributes"
	KindCategories  = "categories"
	KindSamples     = "samples"
	KindImages      = "images"
	KindAugment     = "augment-policy"
	KindFrequencies = "frequencies"
	KindWeights     = "weights"
	KindModel       = "model"
	KindHistory     = "history"
	KindPredictions = "predictions"
	KindMetrics     = "metrics"
	KindTable       = "table"
	KindReport      = "report"
)

// Schema metadata keys shared by several kinds.
const (
	// MetaRoot is the absolute data root that sample image paths are
	// relative to.
	MetaRoot = "stitch.root"
	// MetaAttributes is the number of attributes (the width of labels).
	MetaAttributes = "stitch.attributes"
	// MetaHeight and MetaWidth give the pixel size of an images table.
	MetaHeight = "stitch.height"
	MetaWidth  = "stitch.width"
	// MetaImagesFingerprint is a samples table's Samples.ImagesFingerprint.
	MetaImagesFingerprint = "stitch.images_fingerprint"
)
