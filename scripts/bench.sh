#!/usr/bin/env bash
# `make bench`: runs the benchmarks the issues ask for, then prints one
# summary table beside each target. PyTorch's reference throughput comes
# from ../shared/bench/torch_reference.py when Debian's python3-torch is
# installed (apt-get install python3-torch python3-torchvision).
#
# The benchmarks need an idle machine: on 2 cores, anything else running
# shows up in every figure.
set -uo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0

bench() { # name package pattern [benchtime]
	local name=$1 pkg=$2 pattern=$3 time=${4:-1x}
	echo "== $name: go test -run '^\$' -bench '$pattern' -benchtime $time $pkg" >&2
	if ! go test -run '^$' -bench "$pattern" -benchtime "$time" -timeout 30m "$pkg" | tee "$out/$name.txt" >&2; then
		echo "benchmark $name failed" >&2
		status=1
	fi
}

bench engine ./cmd/stitch 'BenchmarkNoopRun50|BenchmarkStatus300k' 3x
bench parse ./stages/partitions BenchmarkParseCoarseFull 1x
bench metrics ./metrics BenchmarkEvaluate 3x
bench predict ./models/infer 'BenchmarkPredict' 20x
bench train ./models/train BenchmarkTrainStep 5x

# Training against PyTorch: the machine's speed drifts by tens of percent
# from one minute to the next, so each model's step and the reference run
# one after the other, three rounds, and the table gives the medians and
# the median of the rounds' ratios.
rounds=""
if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
	if go test -c -o "$out/train.test" ./models/train; then
		for round in 1 2 3; do
			for spec in smallcnn:64 mobilenet_v2:112 resnet18:112; do
				arch=${spec%%:*} size=${spec##*:}
				ips=$(cd models/train && "$out/train.test" -test.run '^$' -test.benchtime 5x \
					-test.bench "BenchmarkTrainStep/${arch}_${size}px\$" | awk '/img\/s/ {print $(NF-1)}')
				line=$(/usr/bin/python3 ../shared/bench/torch_reference.py --arch "$arch" --size "$size" --batch 32)
				ref=$(echo "$line" | sed -n 's/.*train_img_per_s=\([0-9.]*\).*/\1/p')
				echo "round $round: $arch stitch ${ips:-?} img/s, torch ${ref:-?} img/s" >&2
				rounds+="$arch ${ips:-0} ${ref:-0}"$'\n'
			done
		done
	else
		status=1
	fi
else
	echo "python3-torch not installed: no PyTorch reference column" >&2
fi

# metric VALUE from a benchmark line: the number before the unit.
metric() { # file benchmark-regexp unit
	grep -E "$2" "$out/$1.txt" 2>/dev/null | head -n 1 |
		awk -v unit="$3" '{for (i = 2; i <= NF; i++) if ($i == unit) {print $(i-1); exit}}'
}
secs() { awk '{if ($1 == "") print "-"; else printf "%.3f s", $1 / 1e9}' <<<"$1"; }
# median_of ARCH FIELD: the median over the rounds of field 2 (stitch),
# 3 (torch) or 4 (their ratio).
median_of() {
	awk -v a="$1" -v f="$2" '$1 == a && $2 > 0 && $3 > 0 {print (f == 4 ? $2 / $3 : $f)}' <<<"$rounds" |
		sort -g | awk '{v[NR] = $1} END {if (NR) printf "%.2f", (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'
}

printf '\n%-44s %-22s %s\n' "benchmark" "measured" "target"
printf '%-44s %-22s %s\n' "no-op run, 50 stages" "$(secs "$(metric engine NoopRun50 ns/op)")" "< 1 s"
printf '%-44s %-22s %s\n' "warm status, 300 000 files" "$(secs "$(metric engine Status300k ns/op)")" "< 1 s"
printf '%-44s %-22s %s\n' "parse coarse annotations (289,222 x 1000)" \
	"$(metric parse ParseCoarseFull MB/s) MB/s" ">= 5x pandas.read_csv (35 MB/s here)"
printf '%-44s %-22s %s\n' "  peak heap / Arrow output" "$(metric parse ParseCoarseFull peak/arrow)" "< 2"
printf '%-44s %-22s %s\n' "evaluate 40,000 x 1000, k 3/5/20" "$(secs "$(metric metrics Evaluate ns/op)")" "< 0.2 s"
for m in MobileNetV2 ResNet18; do
	printf '%-44s %-22s %s\n' "predict $m 112 px, batch 32 (stitch/bare)" \
		"$(metric predict "Predict$m/ratio" stitch/bare)" ">= 0.95"
done
for spec in smallcnn_64px:smallcnn mobilenet_v2_112px:mobilenet_v2 resnet18_112px:resnet18; do
	name=${spec%%:*} arch=${spec##*:}
	ips=$(median_of "$arch" 2)
	[ -n "$ips" ] || ips=$(metric train "TrainStep/$name-" img/s)
	single=$(metric train "TrainStep/${name}_single" img/s)
	ref=$(median_of "$arch" 3)
	ratio=$(median_of "$arch" 4)
	printf '%-44s %-22s %s\n' "train $name, batch 32 (torch ${ref:-n/a} img/s)" \
		"${ips:-"-"} img/s, ${ratio:-"-"}x torch" ">= 1.5x torch"
	printf '%-44s %-22s %s\n' "  one whole-batch graph on one thread" "${single:-"-"} img/s" ""
done
exit $status
