package train

import (
	"fmt"
	"image"
	"math/rand/v2"

	"stitch/artifacts"
	"stitch/stages/augment"
	"stitch/stages/pixels"
)

// policyAugmenter applies an augment stage's online policy to training
// images, one draw per (seed), so a resumed epoch sees the same images.
type policyAugmenter struct{ policy *augment.Policy }

// readPolicy reads an augment-policy artifact.
func readPolicy(store *artifacts.Store, id artifacts.ID) (augmenter, error) {
	policy, err := augment.ReadPolicy(store, id)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", id.Short(), err)
	}
	return policyAugmenter{policy: policy}, nil
}

// Apply warps img. The trainer has already resized img to the model's
// input, so a policy's own target size is undone afterwards: the tensor
// shape is the model's, not the policy's.
func (a policyAugmenter) Apply(img *image.NRGBA, seed uint64) *image.NRGBA {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	out := a.policy.Apply(img, rng)
	w, h := img.Rect.Dx(), img.Rect.Dy()
	if out.Rect.Dx() != w || out.Rect.Dy() != h {
		out = pixels.Fit(out, w, h)
	}
	return out
}
