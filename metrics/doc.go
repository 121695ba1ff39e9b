// Package metrics computes the top-k and threshold-free metrics of
// multi-label attribute prediction as pure functions over dense arrays:
// n images by m attributes, float32 scores and int8 labels, row-major.
// It imports nothing of the pipeline and can be used on its own.
//
// # Labels
//
// A label is 1 (present), -1 (absent) or 0 (unknown). An unknown label
// counts in no numerator and no denominator of any metric below.
//
// # Ranking and top k
//
// Each image ranks its attributes by score, highest first; equal scores
// rank the lower attribute index first (-0 equals +0; NaN is an error).
// Its top k are the first k of that ranking (all of them when k > m).
//
// For each attribute a, over the evaluated images:
//
//	GT(a)   = images whose label for a is 1
//	PRED(a) = images with a in their top k and a label for a that is not 0
//	TP(a)   = images with a in their top k and label 1 for a
//	FP(a)   = PRED(a) - TP(a)
//
// A ratio whose denominator is 0 is reported as 0, and the counts are
// reported beside it so the two cases can be told apart.
//
// # Micro and macro recall, precision and F1
//
//	micro recall@k    = ΣTP / ΣGT
//	micro precision@k = ΣTP / ΣPRED
//	F1                = 2PR / (P + R), and 0 when P + R = 0
//
// Macro averages are the mean, over the attributes with GT(a) > 0 only, of
// the per-attribute recall TP/GT, precision TP/PRED (0 when PRED is 0) and
// F1 of those two. Attributes without positives are left out rather than
// counted as 0; TopK.MacroNote says "macro over N of M attributes with
// positives".
//
// # DeepFashion per-type recall
//
// For an attribute type t with m_t attributes, each image ranks only the
// attributes of type t and takes its top min(k, m_t). Then
//
//	recall_t@k = Σ_images hits_t / Σ_images positives_t
//
// where hits_t counts the label-1 attributes of type t in that top list and
// positives_t the label-1 attributes of type t. "All" is reported twice:
//
//	pooled = Σ_t Σ_images hits_t / Σ_t Σ_images positives_t
//	global = top k over all m attributes at once, = micro recall@k
//
// Published DeepFashion tables mix the two; stitch labels which is which.
//
// # Category accuracy
//
// Where images have a category (1-based id; 0 means none) and category
// scores exist, top-k accuracy is the share of images with a category whose
// true category is among the k best category scores, ties going to the lower
// id. Images without a category are left out.
//
// # Threshold-free metrics
//
// Per attribute, over the images whose label is known, with P positives
// and N negatives:
//
//	AUC(a) = (#{(p, n): s_p > s_n} + ½ #{(p, n): s_p = s_n}) / (P N)
//
// which is the Mann-Whitney statistic with ties at average ranks; it is
// defined when P > 0 and N > 0. Average precision follows the step-wise
// definition over distinct scores: for each distinct score t of a positive,
// from the highest down,
//
//	AP(a) = Σ_t (positives scoring t / P) × (positives scoring ≥ t / all scoring ≥ t)
//
// defined when P > 0 (it is the mean precision at each positive's rank
// when there are no ties, and equals scikit-learn's average_precision_score).
// Macro AP is the mean over attributes with P > 0; macro AUC the mean over
// attributes with P > 0 and N > 0. Micro AP and AUC apply the same formulas
// to all known (image, attribute) pairs pooled into one list.
//
// # Cost
//
// One pass over the rows selects the top max(k) per image and collects the
// positives' scores. It sorts only the scores at least a threshold carried
// over from the previous image (redoing an image without it when too few
// pass), and ranks each positive within its type by counting, so there is
// no per-type selection. A second pass places every negative among the
// sorted positive scores of its attribute and of all attributes through
// bucket tables whose entries hold both a key's index and the key, so
// most negatives resolve with one load and one comparison; only buckets
// holding several keys are searched. No negative is ever sorted. Both
// passes run on image chunks in parallel; the results are integers summed
// in a fixed order and do not depend on the number of workers. Counts are
// int64.
package metrics
