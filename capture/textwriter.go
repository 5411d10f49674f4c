package capture

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// TextWriter prints packets as text off the capture's path: Write copies a
// packet into the current batch, a decoder goroutine formats whole batches
// and writes them. The ring consumer never decodes or waits on the
// terminal; if printing falls behind by more than queuedBatches batches,
// Write waits, the ring fills and the kernel counts what it could not
// reserve (ring lost): the XDP program's own work is the same either way.
type TextWriter struct {
	mu      sync.Mutex
	cur     *textBatch
	queue   chan *textBatch
	free    chan *textBatch
	done    chan struct{}
	stop    chan struct{}
	flusher sync.WaitGroup
	err     error // the decoder's first write error, read after done
	errMu   sync.Mutex
}

type textPacket struct {
	timeNs int64
	length int
	start  int // in textBatch.data
	end    int
}

type textBatch struct {
	pkts []textPacket
	data []byte
}

const (
	textBatchPackets = 256
	textBatchBytes   = 256 << 10
	queuedBatches    = 16
	// textFlushEvery hands on a partial batch: the most a quiet capture's
	// line waits before it is printed.
	textFlushEvery = 20 * time.Millisecond
)

// NewTextWriter prints to w with the printer's options. lineBuffered (-l)
// writes each line as it is formatted; otherwise each batch is written
// at once.
func NewTextWriter(w io.Writer, o TextOptions, lineBuffered bool) *TextWriter {
	t := &TextWriter{queue: make(chan *textBatch, queuedBatches), free: make(chan *textBatch, queuedBatches+2),
		done: make(chan struct{}), stop: make(chan struct{})}
	t.cur = t.newBatch()
	go t.decode(w, NewPrinter(o), lineBuffered)
	t.flusher.Add(1)
	go func() {
		defer t.flusher.Done()
		tick := time.NewTicker(textFlushEvery)
		defer tick.Stop()
		for {
			select {
			case <-t.stop:
				return
			case <-tick.C:
				t.mu.Lock()
				if len(t.cur.pkts) > 0 {
					t.handOn()
				}
				t.mu.Unlock()
			}
		}
	}()
	return t
}

func (t *TextWriter) newBatch() *textBatch {
	select {
	case b := <-t.free:
		b.pkts, b.data = b.pkts[:0], b.data[:0]
		return b
	default:
		return &textBatch{pkts: make([]textPacket, 0, textBatchPackets), data: make([]byte, 0, textBatchBytes)}
	}
}

// handOn queues the current batch; t.mu is held.
func (t *TextWriter) handOn() {
	t.queue <- t.cur
	t.cur = t.newBatch()
}

// Write copies p into the batch. It fails only once printing has failed
// (stdout closed: `| head`), which ends the capture.
func (t *TextWriter) Write(p *Packet) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.cur
	start := len(b.data)
	b.data = append(b.data, p.Data...)
	b.pkts = append(b.pkts, textPacket{timeNs: p.TimeNs, length: p.Length, start: start, end: len(b.data)})
	if len(b.pkts) == textBatchPackets || len(b.data) >= textBatchBytes-4096 {
		t.handOn()
	}
	return t.Err()
}

// Err is the first error writing the text.
func (t *TextWriter) Err() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.err
}

func (t *TextWriter) decode(w io.Writer, pr *Printer, lineBuffered bool) {
	defer close(t.done)
	out := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	fail := func(err error) {
		t.errMu.Lock()
		if t.err == nil {
			t.err = err
		}
		t.errMu.Unlock()
	}
	for b := range t.queue {
		if t.Err() == nil {
			for _, p := range b.pkts {
				line = pr.Append(line[:0], p.timeNs, p.length, b.data[p.start:p.end])
				out.Write(line)
				if lineBuffered {
					if err := out.Flush(); err != nil {
						fail(err)
						break
					}
				}
			}
			// The batch is printed: a pipe's reader sees it now, not when
			// 64 KiB have gathered.
			if len(t.queue) == 0 {
				if err := out.Flush(); err != nil {
					fail(err)
				}
			}
		}
		select {
		case t.free <- b:
		default:
		}
	}
	if err := out.Flush(); err != nil {
		fail(err)
	}
}

// Close prints what is left and waits for it to be written.
func (t *TextWriter) Close() error {
	close(t.stop)
	t.flusher.Wait()
	t.mu.Lock()
	if len(t.cur.pkts) > 0 {
		t.handOn()
	}
	close(t.queue)
	t.mu.Unlock()
	<-t.done
	return t.Err()
}
