package train

import (
	"fmt"

	"stitch/artifacts"
)

// readPolicy reads an augment-policy artifact.
//
// TODO(#6): apply stages/augment's policy once that package lands; until
// then a policy input is refused rather than silently ignored.
func readPolicy(_ *artifacts.Store, id artifacts.ID) (augmenter, error) {
	return nil, fmt.Errorf("policy %s: online augmentation is not available yet", id.Short())
}
