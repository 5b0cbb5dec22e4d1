//go:build !linux

package main

import "errors"

// defaultWSReader is the -ws-reader used unless told otherwise: the epoll
// reader needs Linux.
const defaultWSReader = wsReaderGoroutine

var errNoEpoll = errors.New("-ws-reader epoll needs Linux")

// wsLoop stands for the Linux event loop; parseFlags refuses -ws-reader
// epoll elsewhere, so none is made.
type wsLoop struct{}

func newWSLoop(*worker) (*wsLoop, error)         { return nil, errNoEpoll }
func (*wsLoop) run()                             {}
func (*wsLoop) subscribe(int, func(error)) error { return errNoEpoll }
