package train

import "stitch/models/graph"

// lossNames are the values AppendLoss adds to a graph.
type lossNames struct {
	// Loss is the scalar loss, shape [1].
	Loss string
	// Grad is dLoss/dlogits, the logits' shape.
	Grad string
}

// appendLoss appends the masked binary cross-entropy on logits z with
// per-attribute positive weights pw and its gradient with respect to z.
//
// With w = 1 + (pw-1)·y, the per-label loss is
//
//	l(z) = (1-y)·z + w·softplus(-z)
//	softplus(-z) = log(1 + exp(-|z|)) + max(-z, 0)
//
// (PyTorch's BCEWithLogitsLoss with pos_weight; the second form of the
// softplus never overflows), and its derivative is
//
//	dl/dz = (1-y) - w·sigmoid(-z) = w·sigmoid(z) - pw·y.
//
// The loss is the mean of l over the labels whose mask is 1 (known
// labels), dividing by max(count, 1) so a batch without any known label
// gives 0 instead of NaN. A shard of a replicated step divides by the
// whole batch's count instead, read from the input named count, so that
// the shards' losses and gradients add up to the batch's. The gradient is written out here rather than
// differentiated, because the closed form is both cheaper and exact where
// the chain rule through Abs and Relu has kinks.
func appendLoss(b *graph.Builder, z, y, mask, pw, count string) lossNames {
	one := scalarConst(b, "loss/one", 1)

	// Known-label count, at least 1. keepdims=0 gives a scalar.
	if count == "" {
		count = b.Op("ReduceSum", "loss/count", []string{mask}, graph.AttrInt("keepdims", 0))
		count = b.Op("Max", "loss/count_min1", []string{count, one})
	}

	// w = 1 + (pw-1)·y.
	w := b.Op("Sub", "loss/pw_minus1", []string{pw, one})
	w = b.Op("Mul", "loss/pw_y", []string{w, y})
	w = b.Op("Add", "loss/w", []string{w, one})

	// l = (1-y)·z + w·softplus(-z).
	negAbs := b.Op("Neg", "loss/neg_abs", []string{b.Op("Abs", "loss/abs", []string{z})})
	softplus := b.Op("Log", "loss/log1p", []string{
		b.Op("Add", "loss/one_plus", []string{b.Op("Exp", "loss/exp", []string{negAbs}), one}),
	})
	negPart := b.Op("Relu", "loss/relu_neg", []string{b.Op("Neg", "loss/neg_z", []string{z})})
	softplus = b.Op("Add", "loss/softplus", []string{softplus, negPart})
	l := b.Op("Mul", "loss/w_softplus", []string{w, softplus})
	oneMinusY := b.Op("Sub", "loss/one_minus_y", []string{one, y})
	l = b.Op("Add", "loss/per_label", []string{l, b.Op("Mul", "loss/neg_term", []string{oneMinusY, z})})

	// Masked mean, reshaped to [1] because a rank-0 tensor cannot be bound
	// as a preallocated output by the Go runtime binding.
	sum := b.Op("ReduceSum", "loss/sum", []string{b.Op("Mul", "loss/masked", []string{l, mask})},
		graph.AttrInt("keepdims", 0))
	shape1, err := b.Int64Initializer("loss/shape1", []int64{1}, 1)
	if err != nil {
		panic(err) // one value for shape [1] cannot fail
	}
	loss := b.Op("Reshape", "loss/loss", []string{b.Op("Div", "loss/mean", []string{sum, count}), shape1})

	// dLoss/dz = mask·(w·sigmoid(z) - pw·y) / count.
	grad := b.Op("Mul", "loss/w_sigmoid", []string{w, b.Op("Sigmoid", "loss/sigmoid", []string{z})})
	grad = b.Op("Sub", "loss/dl", []string{grad, b.Op("Mul", "loss/pw_times_y", []string{pw, y})})
	grad = b.Op("Mul", "loss/dl_masked", []string{grad, mask})
	grad = b.Op("Div", "loss/grad", []string{grad, count})
	return lossNames{Loss: loss, Grad: grad}
}

// scalarConst is a float32 scalar initializer.
func scalarConst(b *graph.Builder, name string, v float32) string {
	n, err := b.Initializer(name, []float32{v})
	if err != nil {
		panic(err) // one value for a scalar shape cannot fail
	}
	return n
}

// renameLast renames the only output of the node b added last, so graph
// outputs get stable names without an Identity copy.
func renameLast(b *graph.Builder, to string) {
	nodes := b.Graph().Node
	nodes[len(nodes)-1].Output[0] = to
}

// appendCategoryLoss appends the softmax cross-entropy of category logits
// z [batch, classes] against ids [batch] (int64: 1 to classes is the
// true class, 0 none), and its gradient with respect to z.
//
// With o the one-hot rows of ids (all zero for id 0), the loss is the
// mean of -Σ o·log softmax(z) over the rows that have a class, dividing
// by max(count, 1) so that a batch without any gives 0 instead of NaN.
// LogSoftmax subtracts the row maximum (log-sum-exp), so large logits do
// not overflow. The gradient, written out as for appendLoss, is
//
//	dLoss/dz = (softmax(z)·[row has a class] - o) / count.
//
// Only operators whose form is the same from opset 7 on are used (no
// per-axis reductions: those changed form at opsets 13 and 18), since the
// loss lands in whatever opset the forward model has.
//
// As in appendLoss, a non-empty count names an input holding the whole
// batch's count (rows with a class, at least 1) for a shard to divide by.
func appendCategoryLoss(b *graph.Builder, z, ids, count string, batch, classes int) lossNames {
	one := scalarConst(b, "category_loss/one", 1)

	// o = (ids[:, None] == [1..classes]) as floats.
	column, err := b.Int64Initializer("category_loss/column", []int64{int64(batch), 1}, 2)
	if err != nil {
		panic(err) // two values for shape [2] cannot fail
	}
	classIDs := make([]int64, classes)
	for c := range classIDs {
		classIDs[c] = int64(c + 1)
	}
	row, err := b.Int64Initializer("category_loss/class_ids", classIDs, 1, int64(classes))
	if err != nil {
		panic(err) // classes values for shape [1, classes] cannot fail
	}
	onehot := b.Op("Equal", "category_loss/equal", []string{
		b.Op("Reshape", "category_loss/ids_column", []string{ids, column}), row,
	})
	onehot = b.Op("Cast", "category_loss/onehot", []string{onehot}, graph.AttrInt("to", int64(graph.Float)))

	// Rows with a class, and their count (at least 1). A MatMul by a column
	// of ones sums each row in any opset.
	ones := make([]float32, classes)
	for c := range ones {
		ones[c] = 1
	}
	onesColumn, err := b.Initializer("category_loss/ones", ones, int64(classes), 1)
	if err != nil {
		panic(err) // classes values for shape [classes, 1] cannot fail
	}
	labelled := b.Op("MatMul", "category_loss/labelled", []string{onehot, onesColumn})
	if count == "" {
		count = b.Op("ReduceSum", "category_loss/count", []string{labelled}, graph.AttrInt("keepdims", 0))
		count = b.Op("Max", "category_loss/count_min1", []string{count, one})
	}

	// Loss: -Σ o·log softmax(z) / count, shaped [1] like appendLoss's.
	logp := b.Op("LogSoftmax", "category_loss/log_softmax", []string{z}, graph.AttrInt("axis", 1))
	picked := b.Op("Mul", "category_loss/picked", []string{onehot, logp})
	sum := b.Op("ReduceSum", "category_loss/sum", []string{picked}, graph.AttrInt("keepdims", 0))
	shape1, err := b.Int64Initializer("category_loss/shape1", []int64{1}, 1)
	if err != nil {
		panic(err) // one value for shape [1] cannot fail
	}
	mean := b.Op("Div", "category_loss/mean", []string{b.Op("Neg", "category_loss/neg", []string{sum}), count})
	loss := b.Op("Reshape", "category_loss/loss", []string{mean, shape1})

	// dLoss/dz = (softmax(z)·labelled - o) / count.
	p := b.Op("Exp", "category_loss/softmax", []string{logp})
	grad := b.Op("Mul", "category_loss/p_labelled", []string{p, labelled})
	grad = b.Op("Sub", "category_loss/dl", []string{grad, onehot})
	grad = b.Op("Div", "category_loss/grad", []string{grad, count})
	return lossNames{Loss: loss, Grad: grad}
}
