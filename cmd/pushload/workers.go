package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
)

// A workerHandle is a share of the subscribers, held in this process or in
// a copy of this program started with -worker (each process may open at
// most RLIMIT_NOFILE files, 20,000 here).
type workerHandle interface {
	ready() (readyMsg, error)
	finish(finishMsg) (resultMsg, error)
	kill()
}

type localWorker struct{ w *worker }

func (l localWorker) ready() (readyMsg, error) { return l.w.connect(), nil }
func (l localWorker) finish(f finishMsg) (resultMsg, error) {
	return l.w.finish(f), nil
}
func (l localWorker) kill() { l.w.cancel() }

// remoteWorker talks JSON lines with a worker process: config in, ready
// out, finish in, result out.
type remoteWorker struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *json.Decoder
	once sync.Once
}

func startRemote(cfg workerConfig) (*remoteWorker, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-worker")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting worker process: %w", err)
	}
	r := &remoteWorker{cmd: cmd, in: in, out: json.NewDecoder(bufio.NewReader(out))}
	if err := json.NewEncoder(in).Encode(cfg); err != nil {
		r.kill()
		return nil, err
	}
	return r, nil
}

func (r *remoteWorker) ready() (readyMsg, error) {
	var m readyMsg
	if err := r.out.Decode(&m); err != nil {
		return m, fmt.Errorf("worker process: %w", err)
	}
	return m, nil
}

func (r *remoteWorker) finish(f finishMsg) (resultMsg, error) {
	var m resultMsg
	if err := json.NewEncoder(r.in).Encode(f); err != nil {
		return m, fmt.Errorf("worker process: %w", err)
	}
	if err := r.out.Decode(&m); err != nil {
		return m, fmt.Errorf("worker process: %w", err)
	}
	m.Remote = true
	r.once.Do(func() { r.in.Close(); r.cmd.Wait() })
	return m, nil
}

func (r *remoteWorker) kill() {
	r.once.Do(func() {
		r.in.Close()
		r.cmd.Process.Kill()
		r.cmd.Wait()
	})
}

// workerMain is the -worker side: it holds the subscribers it is told to,
// and exits when the coordinator closes its stdin or the deadline passes.
func workerMain() error {
	raiseFileLimit()
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	enc := json.NewEncoder(os.Stdout)
	var cfg workerConfig
	if err := dec.Decode(&cfg); err != nil {
		return fmt.Errorf("worker: reading config: %w", err)
	}
	w, err := newWorker(cfg)
	if err != nil {
		return err
	}
	finish := make(chan finishMsg, 1)
	go func() {
		var f finishMsg
		if err := dec.Decode(&f); err != nil {
			w.cancel() // coordinator gone: stop
			f.Published = -1
		}
		finish <- f
	}()
	if err := enc.Encode(w.connect()); err != nil {
		w.cancel()
		return err
	}
	f := <-finish
	if f.Published < 0 {
		w.finish(f)
		return nil
	}
	return enc.Encode(w.finish(f))
}

// startWorkers splits n subscribers over processes of at most perWorker
// each; a single share stays in this process.
func startWorkers(base workerConfig, n, perWorker int) ([]workerHandle, error) {
	k := (n + perWorker - 1) / perWorker
	if k < 1 {
		k = 1
	}
	var hs []workerHandle
	for i := 0; i < k; i++ {
		cfg := base
		cfg.First = i * n / k
		cfg.Count = (i+1)*n/k - cfg.First
		if k == 1 {
			w, err := newWorker(cfg)
			if err != nil {
				return nil, err
			}
			return []workerHandle{localWorker{w}}, nil
		}
		r, err := startRemote(cfg)
		if err != nil {
			for _, h := range hs {
				h.kill()
			}
			return nil, err
		}
		hs = append(hs, r)
	}
	return hs, nil
}
