package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"stitch/pipeline"
)

// progress shows running stages on stderr: on a terminal, a block of bars
// (one per running stage) redrawn in place; elsewhere (CI logs, files)
// plain lines, at most one per stage every plainEvery.
type progress struct {
	w        io.Writer
	terminal bool

	mu      sync.Mutex
	running map[string]*stageProgress
	drawn   int // lines of the bar block now on screen
	stop    chan struct{}
	done    chan struct{}
}

type stageProgress struct {
	phase       string
	done, total int
	note        string
	started     time.Time
	lastPrinted time.Time
}

const plainEvery = 5 * time.Second

func newProgress(w io.Writer, terminal bool) *progress {
	p := &progress{w: w, terminal: terminal, running: map[string]*stageProgress{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			if p.terminal {
				p.mu.Lock()
				p.redraw()
				p.mu.Unlock()
			}
		}
	}
}

func (p *progress) close() {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

// StageStarted implements pipeline.Observer.
func (p *progress) StageStarted(stage string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[stage] = &stageProgress{started: time.Now()}
	p.line(fmt.Sprintf("start %s", stage))
}

// StageProgress implements pipeline.Observer.
func (p *progress) StageProgress(stage, phase string, done, total int, note string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	sp, ok := p.running[stage]
	if !ok {
		return
	}
	sp.phase, sp.done, sp.total, sp.note = phase, done, total, note
	if !p.terminal && time.Since(sp.lastPrinted) >= plainEvery {
		sp.lastPrinted = time.Now()
		p.line(fmt.Sprintf("%s: %s", stage, describeProgress(sp)))
	}
}

// StageFinished implements pipeline.Observer.
func (p *progress) StageFinished(r pipeline.StageResult) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, r.Stage)
	switch r.State {
	case pipeline.StateRan:
		p.line(fmt.Sprintf("done  %s (%.1fs)", r.Stage, r.Duration.Seconds()))
	case pipeline.StateFailed:
		p.line(fmt.Sprintf("FAIL  %s: %s", r.Stage, firstLine(r.Err.Error())))
	case pipeline.StateInterrupted:
		p.line(fmt.Sprintf("stop  %s (interrupted)", r.Stage))
	}
}

// line prints a permanent line above the bar block.
func (p *progress) line(s string) {
	p.clear()
	fmt.Fprintln(p.w, s)
	if p.terminal {
		p.redraw()
	}
}

func (p *progress) clear() {
	if p.drawn > 0 {
		// Up to the first bar line, then erase to the end of the screen.
		fmt.Fprintf(p.w, "\x1b[%dA\r\x1b[J", p.drawn)
		p.drawn = 0
	}
}

func (p *progress) redraw() {
	p.clear()
	names := make([]string, 0, len(p.running))
	for n := range p.running {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		sp := p.running[n]
		fmt.Fprintf(p.w, "%-24s %s %s\n", n, bar(sp.done, sp.total, 20), describeProgress(sp))
	}
	p.drawn = len(names)
}

func describeProgress(sp *stageProgress) string {
	var b strings.Builder
	b.WriteString(sp.phase)
	if sp.total > 0 {
		fmt.Fprintf(&b, " %d/%d", sp.done, sp.total)
	} else if sp.done > 0 {
		fmt.Fprintf(&b, " %d", sp.done)
	}
	if sp.note != "" {
		b.WriteString(" " + sp.note)
	}
	fmt.Fprintf(&b, " %s", time.Since(sp.started).Round(time.Second))
	return strings.TrimSpace(b.String())
}

func bar(done, total, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat("?", width) + "]"
	}
	n := min(width, width*done/total)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

// Write prints log output as permanent lines above the bar block, so a
// log line never lands inside the block that the next redraw erases.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	n, err := p.w.Write(b)
	if p.terminal {
		p.redraw()
	}
	return n, err
}

// logSink is the logger's writer: stderr, or the progress display while
// one is active.
type logSink struct {
	w io.Writer

	mu       sync.Mutex
	progress *progress
}

func (s *logSink) Write(b []byte) (int, error) {
	s.mu.Lock()
	p := s.progress
	s.mu.Unlock()
	if p != nil {
		return p.Write(b)
	}
	return s.w.Write(b)
}

// attach routes log output through p until the returned function is called.
func (s *logSink) attach(p *progress) (detach func()) {
	s.mu.Lock()
	s.progress = p
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		s.progress = nil
		s.mu.Unlock()
	}
}
