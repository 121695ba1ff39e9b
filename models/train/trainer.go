package train

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"time"

	"stitch/artifacts"
	"stitch/models/graph"
	"stitch/models/onnxpb"
	"stitch/models/ort"
)

// Best-checkpoint metrics.
const (
	BestByValAUC  = "val_auc"
	BestByValLoss = "val_loss"
)

// Phase is one call of the notebook's fit: which parameters train, for
// how long, on what batches.
type Phase struct {
	// Trainable are the initializers this phase updates.
	Trainable []string
	// MaxEpochs 0 skips the phase. StepsPerEpoch and ValidationSteps 0
	// mean a full pass over the training and validation samples.
	MaxEpochs, StepsPerEpoch, ValidationSteps int
	BatchSize                                 int
	LearningRate                              float64
}

// Progress receives progress for a person (pipeline.Progress fits).
type Progress interface {
	Report(phase string, done, total int, note string)
}

// Config is a training run.
type Config struct {
	// Model is the forward model: image Input to per-class Logits. It is
	// not changed.
	Model         *onnxpb.ModelProto
	Input, Logits string
	// CategoryLogits, when set, names the model's category logits: the
	// loss adds CategoryWeight times their softmax cross-entropy, and the
	// datasets must be CategoryDatasets.
	CategoryLogits string
	CategoryWeight float64
	Height, Width  int
	Phases         []Phase
	Optimizer      Optimizer
	// PosWeight holds one positive weight per class; nil means 1.
	PosWeight []float32
	// Patience and MinDelta stop a phase when the validation loss has not
	// improved by MinDelta for Patience epochs (0: never); LRPatience and
	// LRFactor multiply the learning rate by LRFactor after LRPatience
	// epochs without such an improvement (0: never).
	Patience   int
	MinDelta   float64
	LRPatience int
	LRFactor   float64
	// BestBy chooses the kept checkpoint: BestByValAUC (highest) or
	// BestByValLoss (lowest), over all phases. Without validation samples
	// the last weights are kept.
	BestBy string
	// Seed decides the shuffles and augmentations.
	Seed int64
	// Workdir holds the checkpoint written after every epoch; a run
	// finding one there resumes from it. "" disables checkpoints.
	Workdir string
	// Session chooses the execution provider and threads.
	Session ort.Options
	// Replicas splits each training batch into that many shards run at the
	// same time (Spec.Replicas); 0 chooses AutoReplicas.
	Replicas int
	// Workers decode images in parallel (0: GOMAXPROCS).
	Workers  int
	Logger   *slog.Logger
	Progress Progress
}

// Result is a finished training run.
type Result struct {
	// Model is Config.Model with the kept weights, its image input sized
	// Height x Width.
	Model *onnxpb.ModelProto
	// History has one row per epoch run, in order.
	History []artifacts.Epoch
	// BestPhase and BestEpoch (1-based) say which epoch's weights were
	// kept; 0 when the last weights were kept for lack of validation.
	BestPhase, BestEpoch int
	// ResumedEpochs counts the epochs taken over from a checkpoint in the
	// workdir instead of being trained again.
	ResumedEpochs int
}

// NonFiniteLossError stops training when the loss becomes NaN or infinite.
type NonFiniteLossError struct {
	Loss               float32
	Phase, Epoch, Step int
}

func (e *NonFiniteLossError) Error() string {
	return fmt.Sprintf("loss is %v at phase %d epoch %d step %d", e.Loss, e.Phase, e.Epoch, e.Step)
}

func (c *Config) validate() error {
	switch {
	case c.Model == nil:
		return fmt.Errorf("train: no model")
	case len(c.Phases) == 0:
		return fmt.Errorf("train: no phases")
	case c.BestBy != BestByValAUC && c.BestBy != BestByValLoss:
		return fmt.Errorf("train: best_by %q: want %s or %s", c.BestBy, BestByValAUC, BestByValLoss)
	case c.Replicas < 0:
		return fmt.Errorf("train: %d replicas", c.Replicas)
	case c.LRPatience > 0 && (c.LRFactor <= 0 || c.LRFactor >= 1):
		return fmt.Errorf("train: learning-rate factor %g must lie in (0, 1)", c.LRFactor)
	case c.CategoryLogits != "" && !(c.CategoryWeight > 0):
		return fmt.Errorf("train: category weight %g: want > 0", c.CategoryWeight)
	}
	for i, p := range c.Phases {
		if p.MaxEpochs == 0 {
			continue
		}
		if p.BatchSize <= 0 || p.LearningRate <= 0 || len(p.Trainable) == 0 {
			return fmt.Errorf("train: phase %d: batch size %d, learning rate %g and %d trainable parameters "+
				"must all be positive", i+1, p.BatchSize, p.LearningRate, len(p.Trainable))
		}
	}
	return c.Optimizer.Validate()
}

// fingerprint identifies what a checkpoint must agree with to be resumed.
func (c *Config) fingerprint() string {
	h := sha256.New()
	// Errors cannot happen: plain values marshal, and hashes do not fail.
	fields := []any{c.Input, c.Logits, c.Height, c.Width, c.Phases, c.Optimizer,
		c.PosWeight, c.Patience, c.MinDelta, c.LRPatience, c.LRFactor, c.BestBy, c.Seed}
	if c.CategoryLogits != "" {
		// Only then: checkpoints of attribute-only runs keep their
		// fingerprints.
		fields = append(fields, c.CategoryLogits, c.CategoryWeight)
	}
	data, _ := json.Marshal(fields)
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// trainer is one run of Train.
type trainer struct {
	cfg        Config
	log        *slog.Logger
	train, val Dataset
	// trained are the parameters some phase trains: what checkpoints and
	// the result carry besides the unchanged model.
	trained []string
	ck      checkpoint
	// resumed is the number of epochs the checkpoint brought.
	resumed int
}

// Train runs the phases of cfg on train, validating on val (which may be
// empty), and returns the model with the kept weights and the history.
//
// Each epoch ends with a checkpoint in cfg.Workdir; Train resumes from one
// it finds there, and then produces the same model as a run that was never
// interrupted. Runs with one seed on the CPU give the same bytes.
func Train(ctx context.Context, cfg Config, train, val Dataset) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if train.Len() == 0 {
		return nil, fmt.Errorf("train: no training samples")
	}
	if cfg.CategoryLogits != "" {
		_, okTrain := train.(CategoryDataset)
		_, okVal := val.(CategoryDataset)
		if !okTrain || (val != nil && !okVal) {
			return nil, fmt.Errorf("train: the model has category logits %q, and the datasets "+
				"(%T, %T) have no categories", cfg.CategoryLogits, train, val)
		}
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	t := &trainer{cfg: cfg, log: cfg.Logger, train: train, val: val}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range cfg.Phases {
		for _, name := range p.Trainable {
			if !slices.Contains(t.trained, name) {
				t.trained = append(t.trained, name)
			}
		}
	}
	if err := t.start(); err != nil {
		return nil, err
	}
	for p := max(t.ck.Phase, 0); p < len(cfg.Phases); p++ {
		if err := t.runPhase(ctx, p); err != nil {
			return nil, err
		}
	}
	return t.result()
}

// start loads the checkpoint in the workdir, or the initial weights.
func (t *trainer) start() error {
	all, err := Weights(t.cfg.Model)
	if err != nil {
		return err
	}
	t.ck = checkpoint{Weights: map[string][]float32{}}
	for _, name := range t.trained {
		w, ok := all[name]
		if !ok {
			return fmt.Errorf("train: no float initializer %q in the model", name)
		}
		t.ck.Weights[name] = w
	}
	t.ck.Phase = -1
	if t.cfg.Workdir == "" {
		return nil
	}
	ck, err := readCheckpoint(t.cfg.Workdir)
	if errors.Is(err, errBadCheckpoint) {
		// Training from the start loses time, never correctness; the
		// file is replaced after the first epoch.
		t.log.Warn("ignoring a damaged checkpoint; training from the start", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	if ck == nil {
		return nil
	}
	if ck.Fingerprint != t.cfg.fingerprint() || !sameShapes(ck.Weights, t.ck.Weights) {
		t.log.Warn("ignoring a checkpoint of another configuration", "dir", t.cfg.Workdir)
		return nil
	}
	t.ck = *ck
	t.resumed = len(ck.History)
	t.log.Info("resuming training from checkpoint", "phase", ck.Phase+1, "epoch", ck.Epoch,
		"steps", ck.Steps)
	return nil
}

func sameShapes(a, b map[string][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if len(b[k]) != len(v) {
			return false
		}
	}
	return true
}

// beginPhase resets what is per phase: the optimizer state, step count,
// learning rate, early stopping and plateau counters.
func (t *trainer) beginPhase(p int) {
	ck := &t.ck
	ck.Phase, ck.Epoch, ck.Steps, ck.Done = p, 0, 0, false
	ck.LR = t.cfg.Phases[p].LearningRate
	ck.BestValLoss, ck.Wait, ck.LRWait = math.MaxFloat64, 0, 0
	ck.States = nil
}

func (t *trainer) runPhase(ctx context.Context, p int) error {
	ph := t.cfg.Phases[p]
	if t.ck.Phase != p {
		t.beginPhase(p)
	}
	if ph.MaxEpochs == 0 || t.ck.Done || t.ck.Epoch >= ph.MaxEpochs {
		return nil
	}
	t.log.Info("training", "phase", p+1, "trainable", len(ph.Trainable),
		"from_epoch", t.ck.Epoch+1, "max_epochs", ph.MaxEpochs)

	s, err := t.stepper(ph)
	if err != nil {
		return fmt.Errorf("train: phase %d: %w", p+1, err)
	}
	defer s.Close() // frees C memory; nothing to report at this point
	bufs := make([]*Batch, 2)
	for i := range bufs {
		if bufs[i], err = s.NewBatch(); err != nil {
			return err
		}
		defer bufs[i].Close()
	}

	for e := t.ck.Epoch + 1; e <= ph.MaxEpochs; e++ {
		row, err := t.runEpoch(ctx, s, bufs, p, e)
		if err != nil {
			return err
		}
		stop := t.endEpoch(s, row)
		if stop {
			t.ck.Done = true
			t.log.Info("early stopping", "phase", p+1, "epoch", e)
		}
		if err := t.save(); err != nil {
			return err
		}
		if stop {
			break
		}
	}
	return nil
}

// stepper builds the graphs of phase ph over the current weights.
func (t *trainer) stepper(ph Phase) (*Stepper, error) {
	forward, err := SetWeights(t.cfg.Model, t.ck.Weights)
	if err != nil {
		return nil, err
	}
	spec := Spec{
		Input: t.cfg.Input, Logits: t.cfg.Logits, Trainable: ph.Trainable,
		CategoryLogits: t.cfg.CategoryLogits, CategoryWeight: float32(t.cfg.CategoryWeight),
		Batch: ph.BatchSize, Height: t.cfg.Height, Width: t.cfg.Width, Optimizer: t.cfg.Optimizer,
		Replicas: t.cfg.Replicas,
	}
	if spec.Replicas == 0 {
		// Where the step really runs: CUDA with a fall back may be the CPU.
		provider, err := ort.Provider(t.cfg.Session)
		if err != nil {
			return nil, err
		}
		spec.Replicas = AutoReplicas(provider, ph.BatchSize)
	}
	step, err := BuildStep(forward, spec)
	if err != nil {
		return nil, err
	}
	eval, err := BuildEval(forward, spec)
	if err != nil {
		return nil, err
	}
	return NewStepper(step, eval, t.ck.Weights, t.ck.States, t.ck.Steps, t.cfg.PosWeight, t.cfg.Session)
}

// runEpoch trains one epoch and validates; it returns the history row.
func (t *trainer) runEpoch(ctx context.Context, s *Stepper, bufs []*Batch, p, e int) (artifacts.Epoch, error) {
	ph := t.cfg.Phases[p]
	row := artifacts.Epoch{Phase: p + 1, Epoch: e, LearningRate: t.ck.LR}
	start := time.Now()
	plan := trainPlan(t.train.Len(), ph.BatchSize, ph.StepsPerEpoch, epochSeed(t.cfg.Seed, p, e))
	label := fmt.Sprintf("phase %d epoch %d/%d", p+1, e, ph.MaxEpochs)
	var sum float64
	err := loadBatches(ctx, t.train, plan, bufs, t.cfg.Workers, func(step int, b *Batch) error {
		loss, err := s.Step(b, t.ck.LR)
		if err != nil {
			return err
		}
		if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
			return &NonFiniteLossError{Loss: loss, Phase: p + 1, Epoch: e, Step: step + 1}
		}
		sum += float64(loss)
		if t.cfg.Progress != nil {
			rate := float64((step+1)*ph.BatchSize) / time.Since(start).Seconds()
			t.cfg.Progress.Report(label, step+1, len(plan.rows),
				fmt.Sprintf("loss %.4f, %.0f img/s", sum/float64(step+1), rate))
		}
		return nil
	})
	if err != nil {
		return row, fmt.Errorf("train: %w", err)
	}
	rate := float64(len(plan.rows)*ph.BatchSize) / time.Since(start).Seconds()
	row.TrainLoss = sum / float64(len(plan.rows))

	row.ValLoss, row.ValAUC = math.NaN(), math.NaN()
	row.ValCategoryTop1, row.ValCategoryTop3 = math.NaN(), math.NaN()
	var cat categoryHits
	if t.val != nil && t.val.Len() > 0 {
		if row.ValLoss, row.ValAUC, cat, err = t.validate(ctx, s, bufs, ph); err != nil {
			return row, fmt.Errorf("train: phase %d epoch %d: %w", p+1, e, err)
		}
	}
	attrs := []any{"phase", p + 1, "epoch", e, "train_loss", row.TrainLoss, "val_loss", row.ValLoss,
		"val_auc", row.ValAUC}
	if cat.images > 0 {
		row.ValCategoryTop1, row.ValCategoryTop3 = cat.accuracy()
		attrs = append(attrs, "val_category_top1", row.ValCategoryTop1, "val_category_top3", row.ValCategoryTop3)
	}
	attrs = append(attrs, "lr", row.LearningRate, "img_per_s", math.Round(rate))
	t.log.Info("epoch", attrs...)
	return row, nil
}

// categoryHits counts validation images with a category and how many
// have it first (top1) and among the first three (top3) of the category
// logits.
type categoryHits struct {
	images, top1, top3 int
}

// accuracy returns the top-1 and top-3 accuracy, 0 without images.
func (c categoryHits) accuracy() (top1, top3 float64) {
	n := float64(max(c.images, 1))
	return float64(c.top1) / n, float64(c.top3) / n
}

// add counts the rows of b that have a category, given the category
// logits of b. The rank of the true class counts the classes that beat
// it, ties going to the lower class as in the metrics package.
func (c *categoryHits) add(b *Batch, logits []float32) {
	for r, class := range b.Category[:b.Rows] {
		if class == 0 {
			continue
		}
		row := logits[r*b.categories : (r+1)*b.categories]
		own, rank := row[class-1], 0
		for j, v := range row {
			if v > own || (v == own && j < int(class-1)) {
				rank++
			}
		}
		c.images++
		if rank < 1 {
			c.top1++
		}
		if rank < 3 {
			c.top3++
		}
	}
}

// validate returns the loss over the known validation labels, their
// micro ROC AUC and, with a category head, the category hits.
func (t *trainer) validate(ctx context.Context, s *Stepper, bufs []*Batch, ph Phase) (
	float64, float64, categoryHits, error) {
	plan := evalPlan(t.val.Len(), ph.BatchSize, ph.ValidationSteps)
	var lossSum, count float64
	var items []scored
	var cat categoryHits
	err := loadBatches(ctx, t.val, plan, bufs, t.cfg.Workers, func(_ int, b *Batch) error {
		loss, logits, err := s.Eval(b)
		if err != nil {
			return err
		}
		var known float64
		for i, m := range b.Mask[:b.Rows*b.classes] {
			if m != 0 {
				known++
				items = append(items, scored{score: logits[i], positive: b.Y[i] != 0})
			}
		}
		lossSum += float64(loss) * known
		count += known
		if b.Category != nil {
			cat.add(b, s.EvalCategoryLogits())
		}
		return nil
	})
	if err != nil {
		return 0, 0, cat, err
	}
	return lossSum / math.Max(count, 1), microAUC(items), cat, nil
}

// endEpoch records row, keeps the best weights, and applies the learning
// rate reduction and early stopping; it reports whether to stop the phase.
func (t *trainer) endEpoch(s *Stepper, row artifacts.Epoch) bool {
	ck := &t.ck
	ck.Epoch = row.Epoch
	ck.Steps = s.Steps()
	ck.History = append(ck.History, row)
	for name, v := range s.Params() {
		ck.Weights[name] = slices.Clone(v)
	}
	ck.States = map[string][]float32{}
	for name, v := range s.States() {
		ck.States[name] = slices.Clone(v)
	}
	if math.IsNaN(row.ValLoss) {
		return false
	}

	metric, better := row.ValAUC, row.ValAUC > ck.Best
	if t.cfg.BestBy == BestByValLoss {
		metric, better = row.ValLoss, row.ValLoss < ck.Best
	}
	if !math.IsNaN(metric) && (!ck.HasBest || better) {
		ck.HasBest, ck.Best, ck.BestPhase, ck.BestEpoch = true, metric, row.Phase, row.Epoch
		ck.BestWeights = map[string][]float32{}
		for name, v := range ck.Weights {
			ck.BestWeights[name] = slices.Clone(v)
		}
	}

	// Keras' EarlyStopping and ReduceLROnPlateau on val_loss: an epoch
	// improves when it beats the best by more than MinDelta.
	if row.ValLoss < ck.BestValLoss-t.cfg.MinDelta {
		ck.BestValLoss, ck.Wait, ck.LRWait = row.ValLoss, 0, 0
		return false
	}
	ck.Wait++
	ck.LRWait++
	if t.cfg.LRPatience > 0 && ck.LRWait >= t.cfg.LRPatience {
		ck.LR *= t.cfg.LRFactor
		ck.LRWait = 0
		t.log.Info("reducing the learning rate", "phase", row.Phase, "epoch", row.Epoch, "lr", ck.LR)
	}
	return t.cfg.Patience > 0 && ck.Wait >= t.cfg.Patience
}

func (t *trainer) save() error {
	if t.cfg.Workdir == "" {
		return nil
	}
	t.ck.Fingerprint = t.cfg.fingerprint()
	return writeCheckpoint(t.cfg.Workdir, &t.ck)
}

func (t *trainer) result() (*Result, error) {
	res := &Result{History: t.ck.History, ResumedEpochs: t.resumed}
	weights := t.ck.Weights
	if t.ck.HasBest {
		weights, res.BestPhase, res.BestEpoch = t.ck.BestWeights, t.ck.BestPhase, t.ck.BestEpoch
	}
	m, err := SetWeights(t.cfg.Model, weights)
	if err != nil {
		return nil, err
	}
	// The model now expects the size it was trained at; the batch stays
	// free for inference.
	for i, in := range m.Graph.Input {
		if in.GetName() == t.cfg.Input {
			_, dims, _ := graph.TensorShape(in)
			channels := int64(3)
			if len(dims) == 4 && dims[1] > 0 {
				channels = dims[1]
			}
			m.Graph.Input[i] = graph.ValueInfo(t.cfg.Input, graph.Float,
				[]int64{-1, channels, int64(t.cfg.Height), int64(t.cfg.Width)}, "batch")
		}
	}
	res.Model = m
	return res, nil
}

// epochSeed is the seed of epoch e of phase p: shuffles and augmentations
// depend on nothing else, so a resumed run draws what an uninterrupted one
// would.
func epochSeed(seed int64, p, e int) uint64 {
	return sampleSeed(uint64(seed), p+1, e)
}
