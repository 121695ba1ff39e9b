package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"stitch/pipeline"
)

var cmdDag = &command{
	name:    "dag",
	args:    "[FILE] [--format text|dot|mermaid]",
	summary: "Print the pipeline's stages and how they connect (after matrix expansion).",
	example: `stitch dag pipelines/demo.yaml --format dot | dot -Tsvg > dag.svg`,
	setup: func(fs *flag.FlagSet) runFunc {
		format := fs.String("format", "text", "output format: text, dot or mermaid")
		var sets stringList
		fs.Var(&sets, "set", "override pipeline parameter: `name=value`; repeatable")
		return func(ctx context.Context, e *env, args []string) error {
			file, err := pipelineFile(args)
			if err != nil {
				return err
			}
			p, err := e.load(file, sets)
			if err != nil {
				return err
			}
			switch *format {
			case "text":
				dagText(e.stdout, p)
			case "dot":
				dagDot(e.stdout, p)
			case "mermaid":
				dagMermaid(e.stdout, p)
			default:
				return usagef("--format: want text, dot or mermaid, got %q", *format)
			}
			return nil
		}
	},
}

func dagText(w io.Writer, p *pipeline.Pipeline) {
	fmt.Fprintf(w, "pipeline %s (%d stages)\n", p.Name, len(p.Stages))
	for _, s := range p.Stages {
		fmt.Fprintf(w, "%s (%s)\n", s.Name, s.Kind.Name())
		for _, in := range s.Inputs {
			refs := make([]string, len(in.Refs))
			for i, r := range in.Refs {
				refs[i] = r.String()
			}
			fmt.Fprintf(w, "  %s <- %s\n", in.Name, strings.Join(refs, ", "))
		}
	}
}

func dagDot(w io.Writer, p *pipeline.Pipeline) {
	fmt.Fprintf(w, "digraph %q {\n  rankdir=LR;\n  node [shape=box];\n", p.Name)
	for _, s := range p.Stages {
		fmt.Fprintf(w, "  %q [label=%q];\n", s.Name, s.Name+"\n"+s.Kind.Name())
	}
	for _, s := range p.Stages {
		for _, in := range s.Inputs {
			for _, r := range in.Refs {
				fmt.Fprintf(w, "  %q -> %q [label=%q];\n", r.Stage, s.Name, r.Output+" -> "+in.Name)
			}
		}
	}
	fmt.Fprintln(w, "}")
}

func dagMermaid(w io.Writer, p *pipeline.Pipeline) {
	ids := map[string]string{}
	fmt.Fprintln(w, "graph LR")
	for i, s := range p.Stages {
		// Mermaid ids cannot hold brackets or commas; labels can, quoted.
		ids[s.Name] = fmt.Sprintf("s%d", i)
		label := strings.ReplaceAll(s.Name+"<br/>"+s.Kind.Name(), `"`, "#quot;")
		fmt.Fprintf(w, "  %s[\"%s\"]\n", ids[s.Name], label)
	}
	for _, s := range p.Stages {
		for _, in := range s.Inputs {
			for _, r := range in.Refs {
				fmt.Fprintf(w, "  %s -->|%s| %s\n", ids[r.Stage], r.Output, ids[s.Name])
			}
		}
	}
}
