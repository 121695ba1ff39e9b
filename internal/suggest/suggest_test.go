package suggest

import "testing"

func TestClosest(t *testing.T) {
	inputs := []string{"attributes", "categories", "model", "policy", "train", "val", "weights"}
	tests := []struct {
		name       string
		candidates []string
		want       string
	}{
		{"categry", inputs, "categories"},
		{"category", inputs, "categories"},  // singular for a plural
		{"Category", inputs, "categories"},  // any case
		{"attribute", inputs, "attributes"}, // a plain s
		{"weight", inputs, "weights"},       // a short one
		{"models", inputs, "model"},         // plural for a singular
		{"valid", inputs, "val"},            // two edits
		{"seed", []string{"backbone"}, ""},  // nothing close
		{"class", []string{"classes"}, "classes"},
		{"lr", []string{"l2", "lr_factor"}, "l2"},
		{"x", nil, ""},
		// One word of a single snake_case candidate.
		{"size", []string{"image_size", "margin", "workers"}, "image_size"},
		{"size", []string{"image_size", "batch_size"}, ""}, // several: no guess
		{"max", []string{"max_epochs"}, "max_epochs"},
	}
	for _, tt := range tests {
		if got := Closest(tt.name, tt.candidates); got != tt.want {
			t.Errorf("Closest(%q, %v) = %q, want %q", tt.name, tt.candidates, got, tt.want)
		}
	}
}

func TestSingular(t *testing.T) {
	for in, want := range map[string]string{
		"categories": "category", "outputs": "output", "class": "class", "ies": "ies", "bus": "bus", "is": "is",
	} {
		if got := singular(in); got != want {
			t.Errorf("singular(%q) = %q, want %q", in, got, want)
		}
	}
}
