package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"

	"stitch/artifacts"
	"stitch/models/graph"
	"stitch/models/head"
	"stitch/models/onnxpb"
	"stitch/models/ort"
	"stitch/models/train"
	"stitch/models/zoo"
	"stitch/pipeline"
	"stitch/stages/pixels"
)

type kind struct{}

// New returns the train stage kind.
func New() pipeline.Kind { return kind{} }

func (kind) Name() string    { return "train" }
func (kind) Version() string { return "4" }

func (kind) Inputs() []pipeline.Port {
	return []pipeline.Port{
		// No declared kind: samples and images tables both work.
		{Name: "train", Doc: "training samples or images"},
		{Name: "val", Doc: "validation samples or images"},
		{Name: "attributes", Kind: artifacts.KindAttributes, Doc: "attribute names and types"},
		{Name: "weights", Kind: artifacts.KindWeights, Optional: true,
			Doc: "per-attribute positive weights (pos_weight: input)"},
		{Name: "policy", Kind: artifacts.KindAugment, Optional: true, Doc: "online augmentation policy"},
		{Name: "model", Kind: artifacts.KindModel, Optional: true,
			Doc: "a model trained before to start from (its output layer is replaced if the attributes differ)"},
		{Name: "categories", Kind: artifacts.KindCategories, Optional: true,
			Doc: "category ids and names: the model also learns the category (see the categories parameter)"},
	}
}

func (kind) Outputs() []pipeline.Port {
	return []pipeline.Port{
		{Name: "model", Kind: artifacts.KindModel, Doc: "the trained inference model and its metadata"},
		{Name: "history", Kind: artifacts.KindHistory,
			Doc: "losses, AUC and learning rate per epoch (timings are in the log, not here)"},
	}
}

func (kind) NewParams() any { return NewParams() }

// CheckWiring reports, when the pipeline loads, parameters that need an
// input the stage's needs do not wire (run checks them again).
func (kind) CheckWiring(params any, wired func(string) bool) error {
	p := params.(*Params)
	var errs []error
	if p.Categories == CategoriesOn && !wired("categories") {
		errs = append(errs, pipeline.ParamErrorf("categories",
			"categories: true needs the categories input (needs: {categories: SPLIT.categories})"))
	}
	if p.PosWeight == "input" && !wired("weights") {
		errs = append(errs, pipeline.ParamErrorf("pos_weight", "pos_weight: input needs the weights input"))
	}
	return errors.Join(errs...)
}

// OutputNeutral leaves out of the run key what cannot change the model:
// without a category head (categories false, or auto with no categories
// input) the categories mode itself and category_weight, and momentum and
// nesterov under Adam.
func (kind) OutputNeutral(params any, wired func(string) bool) []string {
	p := params.(*Params)
	var out []string
	if p.Categories == CategoriesOff || p.Categories == CategoriesAuto && !wired("categories") {
		out = append(out, "categories", "category_weight")
	}
	if p.Optimizer == train.Adam {
		out = append(out, "momentum", "nesterov")
	}
	return out
}

// Externals names the backbone ONNX file, if any, so that replacing it
// retrains.
func (kind) Externals(params any) ([]string, error) {
	path, err := params.(*Params).backbonePath()
	if err != nil || path == "" {
		return nil, err
	}
	return []string{path}, nil
}

func (kind) Run(ctx context.Context, run pipeline.Run, params any) error {
	// The engine's error already names the stage.
	return runStage(ctx, run, params.(*Params))
}

// inputs are the artifacts a train stage reads.
type inputs struct {
	attrs      []artifacts.Attribute
	train, val *artifacts.Samples
	posWeight  []float32
	start      *artifacts.Model
	policy     augmenter
	// categories are the category head's classes in output order, nil
	// when the model learns no category.
	categories []artifacts.Category
}

func readInputs(run pipeline.Run, p *Params) (*inputs, error) {
	store := run.Store()
	in := &inputs{}
	var err error
	id, _ := run.Input("attributes")
	if in.attrs, err = store.GetAttributes(id); err != nil {
		return nil, err
	}
	for _, part := range []struct {
		name string
		dst  **artifacts.Samples
	}{{"train", &in.train}, {"val", &in.val}} {
		id, _ := run.Input(part.name)
		s, err := store.GetSamples(id)
		if err != nil {
			return nil, err
		}
		if s.NumAttributes != len(in.attrs) {
			return nil, fmt.Errorf("%s: %d attributes per sample, the attributes table has %d",
				part.name, s.NumAttributes, len(in.attrs))
		}
		*part.dst = s
	}
	if in.train.Len() == 0 {
		return nil, fmt.Errorf("train: no samples")
	}

	switch p.PosWeight {
	case "auto":
		in.posWeight = autoPosWeight(in.train)
	case "input":
		id, ok := run.Input("weights")
		if !ok {
			return nil, fmt.Errorf("pos_weight: input needs the weights input")
		}
		if in.posWeight, err = readPosWeights(store, id, len(in.attrs)); err != nil {
			return nil, err
		}
	}
	if id, ok := run.Input("model"); ok {
		if in.start, err = store.GetModel(id); err != nil {
			return nil, err
		}
	}
	if id, ok := run.Input("policy"); ok {
		if in.policy, err = readPolicy(store, id); err != nil {
			return nil, err
		}
	}
	if in.categories, err = readCategories(run, p, in.train); err != nil {
		return nil, err
	}
	return in, nil
}

// readCategories decides whether the model learns the category (see
// Params.Categories) and returns the categories table when it does.
func readCategories(run pipeline.Run, p *Params, train *artifacts.Samples) ([]artifacts.Category, error) {
	if p.Categories == CategoriesOff {
		return nil, nil
	}
	id, wired := run.Input("categories")
	if !wired {
		if p.Categories == CategoriesOn {
			return nil, fmt.Errorf("categories: true needs the categories input (needs: {categories: " +
				"split.categories})")
		}
		return nil, nil
	}
	cats, err := run.Store().GetCategories(id)
	if err != nil {
		return nil, err
	}
	labelled := 0
	for _, c := range train.Category {
		if c > 0 {
			labelled++
		}
	}
	switch {
	case len(cats) == 0 && labelled > 0:
		// auto means "off" only for a dataset without categories: an empty
		// table beside labelled samples is a wiring mistake (the table of
		// another dataset), which training attributes only would hide.
		ref := run.Inputs("categories")[0]
		return nil, fmt.Errorf("categories: %d training samples have category ids, but the wired categories "+
			"table (%s.%s) is empty; wire the table of the samples' dataset, or set categories: false",
			labelled, ref.Stage, ref.Output)
	case len(cats) == 0 || labelled == 0:
		if p.Categories == CategoriesOn {
			return nil, fmt.Errorf("categories: true, and the categories table has %d categories and "+
				"%d training samples have one", len(cats), labelled)
		}
		run.Logger().Info("no category head: the training samples have no categories",
			"categories", len(cats), "labelled_train_samples", labelled)
		return nil, nil
	}
	return cats, nil
}

// categoryClasses maps each sample of s to its class in the category
// head: 1 + the index of its category in cats, 0 for none. A category
// that cats does not list is an error naming the sample.
func categoryClasses(s *artifacts.Samples, cats []artifacts.Category, part string) ([]int, error) {
	col, err := artifacts.CategoryColumns(cats)
	if err != nil {
		return nil, err
	}
	out := make([]int, s.Len())
	for i, id := range s.Category {
		if id == 0 {
			continue
		}
		c, ok := col[id]
		if !ok {
			return nil, fmt.Errorf("%s: sample %s has category %d, which the categories table does not list",
				part, s.Image[i], id)
		}
		out[i] = c + 1
	}
	return out, nil
}

// autoPosWeight is negatives/positives per attribute over the known
// training labels, between 1/MaxPosWeight and MaxPosWeight; an attribute
// without positives or negatives gets 1.
func autoPosWeight(s *artifacts.Samples) []float32 {
	pos := make([]float64, s.NumAttributes)
	neg := make([]float64, s.NumAttributes)
	for i := range s.Len() {
		for a, l := range s.Row(i) {
			switch l {
			case artifacts.Present:
				pos[a]++
			case artifacts.Absent:
				neg[a]++
			}
		}
	}
	w := make([]float32, s.NumAttributes)
	for a := range w {
		w[a] = 1
		if pos[a] > 0 && neg[a] > 0 {
			w[a] = float32(min(max(neg[a]/pos[a], 1.0/MaxPosWeight), MaxPosWeight))
		}
	}
	return w
}

func runStage(ctx context.Context, run pipeline.Run, p *Params) error {
	in, err := readInputs(run, p)
	if err != nil {
		return err
	}
	log := run.Logger()
	m, info, err := buildModel(run, p, in)
	if err != nil {
		return err
	}

	meta := info.Meta
	meta.Input, meta.Output, meta.OutputIsLogits = info.Input, info.Output, true
	meta.Height, meta.Width = p.ImageSize, p.ImageSize
	meta.Attributes = in.attrs
	meta.CategoryOutput, meta.Categories = info.CategoryOutput, in.categories
	if n := p.Normalize; n != nil {
		meta.Scale, meta.Mean, meta.Std = n.Scale, n.Mean, n.Std
	}
	// predict reads files the same way unless told otherwise: as train
	// read them, or as the stage that made the images table did.
	if in.train.Pixels == nil {
		meta.Crop = &artifacts.CropSpec{Crop: p.Crop, Margin: p.CropMargin}
	} else {
		meta.Crop = in.train.Crop
	}
	var boxes pixels.BoxTally
	trainData, valData, err := datasets(in, p, meta, &boxes)
	if err != nil {
		return err
	}

	// Phase 2 unfreezes the backbone after the first FreezeRatio of its
	// parameters in layer order, as the notebook froze the first 80% of
	// the Keras layers.
	frozen := int(math.Floor(p.FreezeRatio * float64(len(info.BackboneParams))))
	phase2 := append(append([]string{}, info.BackboneParams[frozen:]...), info.HeadParams...)
	phases := []train.Phase{toPhase(p.Phase1, info.HeadParams), toPhase(p.Phase2, phase2)}
	capBatches(phases, in.train.Len(), log)
	if in.val.Len() == 0 {
		log.Warn("the val samples are empty: no validation loss or AUC, so no early stopping, no learning-rate " +
			"reduction and no best epoch; the model is the last epoch's")
	}
	log.Info("training plan", "backbone", meta.Backbone,
		"backbone_params", len(info.BackboneParams), "unfrozen_in_phase2", len(info.BackboneParams)-frozen,
		"head_params", len(info.HeadParams), "categories", len(in.categories),
		"train", in.train.Len(), "val", in.val.Len())

	workdir, err := run.Workdir()
	if err != nil {
		return err
	}
	settings := run.Settings()
	cfg := train.Config{
		Model: m, Input: info.Input, Logits: info.Output, Height: p.ImageSize, Width: p.ImageSize,
		CategoryLogits: info.CategoryOutput, CategoryWeight: p.CategoryWeight,
		Phases: phases, Optimizer: p.optimizer(), PosWeight: in.posWeight,
		Patience: p.Patience, MinDelta: p.MinDelta, LRPatience: p.LRPatience, LRFactor: p.LRFactor,
		BestBy: p.BestBy, Seed: run.Seed(), Workdir: workdir,
		Session: ort.Options{Provider: settings.Provider, DeviceID: settings.DeviceID,
			Threads: settings.Threads, FallbackCPU: settings.FallbackCPU, Logger: log},
		Logger: log, Progress: run.Progress(),
	}
	res, err := train.Train(ctx, cfg, trainData, valData)
	if err != nil {
		return err
	}
	boxes.Warn(run.Logger())
	return writeOutputs(run, res, meta)
}

// datasets are the training and validation sets, with each sample's
// category class when the model learns the category. boxes counts the
// boxes beyond their images, each sample once.
func datasets(in *inputs, p *Params, meta artifacts.ModelMeta, boxes *pixels.BoxTally,
) (train.Dataset, train.Dataset, error) {
	trainData := newSamplesData(in.train, p, meta, in.policy, boxes)
	valData := newSamplesData(in.val, p, meta, nil, boxes)
	if in.categories == nil {
		return trainData, valData, nil
	}
	trainClasses, err := categoryClasses(in.train, in.categories, "train")
	if err != nil {
		return nil, nil, err
	}
	valClasses, err := categoryClasses(in.val, in.categories, "val")
	if err != nil {
		return nil, nil, err
	}
	return categoryData{trainData, trainClasses}, categoryData{valData, valClasses}, nil
}

// capBatches lowers a batch size above the number of training samples to
// that number, as Keras' fit does: a full pass is then one batch holding
// every sample once. Left as it is, the trainer would fill the batch with
// repeated samples and allocate batch buffers of batch_size rows.
// Validation batches shrink with it; phases with batches up to n are
// untouched.
func capBatches(phases []train.Phase, n int, log *slog.Logger) {
	for i := range phases {
		ph := &phases[i]
		if ph.MaxEpochs == 0 || ph.BatchSize <= n {
			continue
		}
		log.Info("batch_size is above the number of training samples: batches hold every sample once",
			"phase", i+1, "batch_size", ph.BatchSize, "train", n)
		ph.BatchSize = n
	}
}

func toPhase(p PhaseParams, trainable []string) train.Phase {
	return train.Phase{
		Trainable: trainable, MaxEpochs: p.MaxEpochs, StepsPerEpoch: p.StepsPerEpoch,
		ValidationSteps: p.ValidationSteps, BatchSize: p.BatchSize, LearningRate: p.LearningRate,
	}
}

// buildModel returns the forward model to train: the `model` input (its
// output layer replaced when the attributes differ) or the backbone with a
// fresh head, shared weights untied.
func buildModel(run pipeline.Run, p *Params, in *inputs) (*onnxpb.ModelProto, head.Info, error) {
	n := len(in.attrs)
	seed := run.Seed()
	if in.start != nil {
		return startModel(run, in)
	}

	var backbone *onnxpb.ModelProto
	path, err := p.backbonePath()
	if err != nil {
		return nil, head.Info{}, err
	}
	if path != "" {
		if backbone, err = graph.Read(path); err != nil {
			return nil, head.Info{}, err
		}
	} else {
		run.Logger().Warn("the backbone starts from random initialisation: it is a zoo model and no "+
			"weights file was given (use backbone: weights:PATH for pretrained weights)",
			"backbone", p.Backbone)
		backbone, err = zoo.Build(p.Backbone, zoo.Options{Width: p.Width, InputSize: p.ImageSize, Seed: seed})
		if err != nil {
			return nil, head.Info{}, err
		}
	}
	m, info, err := head.Attach(backbone,
		head.Spec{Hidden: p.Head, Outputs: n, Categories: len(in.categories), Seed: seed})
	if err != nil {
		return nil, head.Info{}, err
	}
	if path != "" {
		info.Meta.Backbone = p.Backbone
	} else if info.Meta.Backbone == "" {
		info.Meta.Backbone = p.Backbone
	}
	return untie(m, info)
}

// startModel returns the `model` input ready to train on: its output layer
// replaced when the attributes differ, its category layer replaced (or
// removed, or added) when the categories differ. The head that phase 1
// trains is the layers replaced, or the whole head when none was, and
// the category layer in every case.
func startModel(run pipeline.Run, in *inputs) (*onnxpb.ModelProto, head.Info, error) {
	n, seed := len(in.attrs), run.Seed()
	m, err := graph.Parse(in.start.ONNX)
	if err != nil {
		return nil, head.Info{}, fmt.Errorf("model input: %w", err)
	}
	info, err := stitchModelInfo(m, in.start.Meta)
	if err != nil {
		return nil, head.Info{}, err
	}
	if len(in.start.Meta.Attributes) != n || info.Output == "" {
		run.Logger().Info("replacing the output layer of the starting model",
			"old_attributes", len(in.start.Meta.Attributes), "new_attributes", n)
		if m, info, err = head.ReplaceOutput(m, n, seed); err != nil {
			return nil, head.Info{}, err
		}
	}
	if !sameCategories(in.start.Meta, in.categories) {
		run.Logger().Info("replacing the category layer of the starting model",
			"old_categories", len(in.start.Meta.Categories), "new_categories", len(in.categories))
		cm, cinfo, err := head.ReplaceCategories(m, len(in.categories), seed)
		if err != nil {
			return nil, head.Info{}, err
		}
		// The old category layer's weights are gone from the model.
		info.HeadParams = slices.DeleteFunc(info.HeadParams, func(p string) bool {
			return slices.Contains(info.CategoryParams, p)
		})
		m, info.CategoryOutput, info.CategoryParams = cm, cinfo.CategoryOutput, cinfo.CategoryParams
	}
	for _, c := range info.CategoryParams {
		if !slices.Contains(info.HeadParams, c) {
			info.HeadParams = append(info.HeadParams, c)
		}
	}
	return untie(m, info)
}

// sameCategories says whether a model's category head predicts exactly
// cats (ids and names, in order); no head and no categories agree.
func sameCategories(meta artifacts.ModelMeta, cats []artifacts.Category) bool {
	if (meta.CategoryOutput != "") != (len(cats) > 0) || len(meta.Categories) != len(cats) {
		return false
	}
	for i, c := range cats {
		if meta.Categories[i].ID != c.ID || meta.Categories[i].Name != c.Name {
			return false
		}
	}
	return true
}

// untie separates shared initializers (train.Untie) and recomputes the
// backbone's parameter order, which then lists the copies too.
func untie(m *onnxpb.ModelProto, info head.Info) (*onnxpb.ModelProto, head.Info, error) {
	if _, err := train.Untie(m); err != nil {
		return nil, head.Info{}, err
	}
	order, err := graph.ParamOrder(m.Graph)
	if err != nil {
		return nil, head.Info{}, err
	}
	isHead := map[string]bool{}
	for _, h := range info.HeadParams {
		isHead[h] = true
	}
	info.BackboneParams = info.BackboneParams[:0]
	for _, name := range order {
		if !isHead[name] {
			info.BackboneParams = append(info.BackboneParams, name)
		}
	}
	return m, info, nil
}

// stitchModelInfo recovers head.Info of a model stitch trained: the head's
// parameters are the initializers named head.*, as head.Attach names them;
// the category layer's are the weights of the Gemm computing the category
// output its metadata names.
func stitchModelInfo(m *onnxpb.ModelProto, meta artifacts.ModelMeta) (head.Info, error) {
	order, err := graph.ParamOrder(m.Graph)
	if err != nil {
		return head.Info{}, fmt.Errorf("model input: %w", err)
	}
	info := head.Info{Input: meta.Input, Output: meta.Output, CategoryOutput: meta.CategoryOutput, Meta: meta}
	if meta.CategoryOutput != "" {
		gemm := graph.Producers(m.Graph)[meta.CategoryOutput]
		if gemm == nil || gemm.GetOpType() != "Gemm" || len(gemm.Input) != 3 {
			return head.Info{}, fmt.Errorf("model input: category output %q is not computed by a Gemm",
				meta.CategoryOutput)
		}
		info.CategoryParams = slices.Clone(gemm.Input[1:3])
	}
	for _, name := range order {
		if strings.HasPrefix(name, "head.") {
			info.HeadParams = append(info.HeadParams, name)
		} else {
			info.BackboneParams = append(info.BackboneParams, name)
		}
	}
	if info.Input == "" {
		return head.Info{}, fmt.Errorf("model input: its metadata names no image input")
	}
	if len(info.HeadParams) == 0 {
		return head.Info{}, fmt.Errorf("model input: no head.* parameters: not a model stitch trained")
	}
	return info, nil
}

func writeOutputs(run pipeline.Run, res *train.Result, meta artifacts.ModelMeta) error {
	if err := head.WriteMeta(res.Model, meta); err != nil {
		return err
	}
	data, err := graph.Marshal(res.Model)
	if err != nil {
		return err
	}
	store := run.Store()
	id, err := store.PutModel(&artifacts.Model{ONNX: data, Meta: meta})
	if err != nil {
		return err
	}
	run.SetOutput("model", id)
	hist, err := store.PutHistory(res.History)
	if err != nil {
		return err
	}
	run.SetOutput("history", hist)
	if res.BestPhase == 0 {
		run.Logger().Info("trained (no validated epoch: the model is the last epoch's)",
			"epochs", len(res.History), "bytes", len(data))
	} else {
		run.Logger().Info("trained", "best_phase", res.BestPhase,
			"best_epoch", res.BestEpoch, "epochs", len(res.History), "bytes", len(data))
	}
	return nil
}
