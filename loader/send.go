package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/bpf"
	"github.com/xdpscan/xdpscan/internal/kfloor"
)

// SendFrame is the longest frame a Sender sends (SEND_FRAME in
// bpf/include/send.h).
const SendFrame = 256

// slotStride is one send_slot in the mmapped array: the kernel rounds an
// array map's values up to 8 bytes.
const slotStride = (int(unsafe.Sizeof(bpf.ScanSendSlot{})) + 7) &^ 7

// XDPMd is struct xdp_md, the context BPF_PROG_RUN takes for XDP: Data is
// the metadata's length, DataEnd the input's.
type XDPMd struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// Sender is the scan program's transmitter (bpf/include/send.h): it sends
// frames from the kernel with BPF_PROG_RUN in live-frames mode (Linux
// 5.18), one syscall per batch and no socket buffer on the sending side.
// The frames go out of an interface whose driver implements ndo_xdp_xmit;
// on veth, the peer must have NAPI enabled (a native XDP program or GRO on
// its end), or the kernel drops them. The scan program must be attached
// (anywhere) while it sends: see send.h for why. A Sender is not safe for
// concurrent use.
type Sender struct {
	prog  *ebpf.Program
	n     int                // slots
	slots []byte             // this sender's send_slots, in slotsMap
	st    *bpf.ScanSendState // this sender's send_states entry, in stateMap
	data  []byte             // data_in: send_meta, then the page every run starts from

	slotsMap, stateMap []byte // the maps, mmapped whole

	relay   *SendRelay
	relayed []byte // send_relayed, mmapped: frames the relay program saw

	ctx      XDPMd
	attr     progRunAttr
	batchLen int // slots the last SetBatch set
}

// progRunAttr is union bpf_attr's BPF_PROG_TEST_RUN member
// (include/uapi/linux/bpf.h). The Sender makes the call itself, as a raw
// system call: cilium/ebpf's Program.Run tells the Go scheduler it is in a
// blocking call, and Go's sysmon, finding the thread in the kernel for
// more than 20 us, takes its processor away and hands it back after each
// call (with one CPU allowed it polls every 20 us to do so: 12% of a
// max-rate scan's CPU in perf). A transmitter call never blocks: it runs
// the batch and returns.
type progRunAttr struct {
	progFD, retval, dataSizeIn, dataSizeOut uint32
	dataIn, dataOut                         uint64
	repeat, duration, ctxSizeIn, ctxSizeOut uint32
	ctxIn, ctxOut                           uint64
	flags, cpu, batchSize, _                uint32
}

// bpfProgTestRun is BPF_PROG_TEST_RUN, alias BPF_PROG_RUN.
const bpfProgTestRun = 10

// run makes one live-frames BPF_PROG_RUN call of repeat runs, transmitted
// every batch runs.
func (s *Sender) run(ifindex int, repeat, batch uint32) error {
	s.ctx = s.context(ifindex)
	s.attr = progRunAttr{
		progFD:     uint32(s.prog.FD()),
		dataSizeIn: uint32(len(s.data)),
		dataIn:     uint64(uintptr(unsafe.Pointer(&s.data[0]))),
		repeat:     repeat,
		ctxSizeIn:  uint32(unsafe.Sizeof(s.ctx)),
		ctxIn:      uint64(uintptr(unsafe.Pointer(&s.ctx))),
		flags:      unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		batchSize:  min(repeat, batch),
	}
	for {
		_, _, errno := unix.RawSyscall(unix.SYS_BPF, bpfProgTestRun, uintptr(unsafe.Pointer(&s.attr)), unsafe.Sizeof(s.attr))
		runtime.KeepAlive(s)
		// Interrupted by a signal between kernel batches: the runs past
		// the batch's limit send nothing, so running it again sends the
		// rest exactly once.
		if errno == unix.EINTR && s.st.Next < s.st.Limit {
			continue
		}
		if errno != 0 && errno != unix.EINTR {
			return errno
		}
		return nil
	}
}

// Sender maps the transmitter's slots into memory: SenderAt(0).
func (s *Scan) Sender() (*Sender, error) { return s.SenderAt(0) }

// SenderAt maps sender k's slots and state into memory (ScanConfig.
// SendSenders): senders on different threads send through the one
// program at once, each with its own. The program must have been loaded
// with ScanConfig.SendSlots.
func (s *Scan) SenderAt(k int) (*Sender, error) {
	if s.sendSlots == 0 {
		return nil, errors.New("scan program loaded without a transmitter (ScanConfig.SendSlots is 0)")
	}
	if k < 0 || k >= int(s.sendSenders) {
		return nil, fmt.Errorf("sender %d: the scan program was loaded for %d (ScanConfig.SendSenders)", k, s.sendSenders)
	}
	if k > 0 && s.relay != nil {
		return nil, errors.New("a send relay serves one sender")
	}
	tx := &Sender{prog: s.Objects.XdpscanScan, n: int(s.sendSlots), data: make([]byte, SendMetaLen+sendPage)}
	binary.NativeEndian.PutUint64(tx.data, s.sendMagic)
	binary.NativeEndian.PutUint32(tx.data[8:], uint32(k))
	var err error
	all := int(s.sendSenders)
	if tx.slotsMap, err = mmapArray(s.Objects.SendSlots, all*tx.n*slotStride); err != nil {
		return nil, err
	}
	tx.slots = tx.slotsMap[k*tx.n*slotStride : (k+1)*tx.n*slotStride]
	const stateStride = int(unsafe.Sizeof(bpf.ScanSendState{}))
	if tx.stateMap, err = mmapArray(s.Objects.SendStates, all*stateStride); err != nil {
		tx.Close()
		return nil, err
	}
	tx.st = (*bpf.ScanSendState)(unsafe.Pointer(&tx.stateMap[k*stateStride]))
	if s.relay != nil {
		tx.relay = s.relay
		if tx.relayed, err = mmapArray(s.Objects.SendRelayed, 8); err != nil {
			tx.Close()
			return nil, err
		}
	}
	return tx, nil
}

// SendMetaLen is the metadata that marks a transmitter run: struct
// send_meta, send_magic and the sender's index.
const SendMetaLen = 16

// sendPage is the frame length every run starts from (the program resizes
// it to the slot's). The kernel copies the input into each page it takes
// fresh for a call's page pool; the page is cold, so every cache line of
// that copy is a miss: the shortest Ethernet frame keeps it to one or two.
const sendPage = 60

// Slots is how many frames one batch holds at most.
func (s *Sender) Slots() int { return s.n }

// mmapArray maps an array map made with BPF_F_MMAPABLE (Linux 5.5).
func mmapArray(m *ebpf.Map, size int) ([]byte, error) {
	page := unix.Getpagesize()
	b, err := unix.Mmap(m.FD(), 0, (size+page-1)/page*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mmap BPF map %s: %w", m, err)
	}
	return b[:size], nil
}

// Frame is slot i's frame buffer (SendFrame bytes), written in place.
func (s *Sender) Frame(i int) []byte {
	off := i*slotStride + int(unsafe.Offsetof(bpf.ScanSendSlot{}.Frame))
	return s.slots[off : off+SendFrame : off+SendFrame]
}

func (s *Sender) setLen(i, n int) {
	*(*uint32)(unsafe.Pointer(&s.slots[i*slotStride])) = uint32(n)
}

// Send transmits the frames in slots [0, len(lens)) out of the interface
// with index ifindex, in the current network namespace; the kernel
// transmits them (and on veth the peer's NAPI runs) every batch frames, at
// most 256. It returns how many the program handed to XDP_TX; the kernel
// reports no transmit failure to the caller (see Sender), so callers check
// the interface's counters. With a relay, the caller makes room in its
// queue first (Queued, SendRelay.Queue): a frame redirected into a full
// queue is dropped without a trace.
func (s *Sender) Send(ifindex int, lens []int, batch uint32) (int, error) {
	n := len(lens)
	if n == 0 {
		return 0, nil
	}
	if n > s.n {
		return 0, fmt.Errorf("send %d frames: at most %d per batch", n, s.n)
	}
	s.SetBatch(lens)
	return s.SendRange(ifindex, 0, n, batch)
}

// SendRange transmits slots [from, to) of the batch the last Send or
// SetBatch set, again if they were sent: the slots keep their frames
// until the next batch is written. A transmitter whose driver refused
// frames of a call resends that call's slots this way (transmit.XDP).
func (s *Sender) SendRange(ifindex, from, to int, batch uint32) (int, error) {
	if from < 0 || from >= to || to > s.batchLen {
		return 0, fmt.Errorf("send slots [%d, %d): outside the batch of %d", from, to, s.batchLen)
	}
	n := to
	before := s.st.Sent
	s.st.Next, s.st.Limit = uint32(from), uint32(to)
	err := s.run(ifindex, uint32(to-from), batch)
	sent := int(s.st.Sent - before)
	if err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return sent, fmt.Errorf("send from XDP on ifindex %d (%s): %w", ifindex, kfloor.LiveFrames.Explain(), err)
		}
		return sent, fmt.Errorf("send from XDP on ifindex %d: %w", ifindex, err)
	}
	if s.st.Next != uint32(n) {
		return sent, fmt.Errorf("send from XDP: the kernel ran %d of %d frames", s.st.Next-uint32(from), n-from)
	}
	return sent, nil
}

// Handed is how many frames the program has handed to XDP_TX (or to the
// relay) since the Sender opened.
func (s *Sender) Handed() uint64 { return s.st.Sent }

// Relayed is how many frames the relay has forwarded (0 without one).
func (s *Sender) Relayed() uint64 {
	if s.relayed == nil {
		return 0
	}
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&s.relayed[0])))
}

// Queued is how many frames wait in the relay's queue.
func (s *Sender) Queued() uint64 {
	if s.relay == nil {
		return 0
	}
	return s.st.Sent - s.Relayed()
}

// Refused is how many slots the program refused (a length out of range).
func (s *Sender) Refused() uint64 { return s.st.Bad }

// RunInput is what one transmitter run of the scan program takes: data_in
// (send_magic as metadata, then the page) and its context (tests run it
// themselves, without live frames, to see the frame it makes).
func (s *Sender) RunInput(ifindex int) (data []byte, ctx XDPMd) { return s.data, s.context(ifindex) }

func (s *Sender) context(ifindex int) XDPMd {
	return XDPMd{Data: SendMetaLen, DataEnd: uint32(len(s.data)), IngressIfindex: uint32(ifindex)}
}

// SetBatch sets the slots the next runs send.
func (s *Sender) SetBatch(lens []int) {
	for i, l := range lens {
		s.setLen(i, l)
	}
	s.st.Next, s.st.Limit, s.st.Page = 0, uint32(len(lens)), sendPage
	s.batchLen = len(lens)
}

// Close unmaps the slots; the program stays the Scan's.
func (s *Sender) Close() error {
	for _, b := range [][]byte{s.slotsMap, s.stateMap, s.relayed} {
		if b != nil {
			_ = unix.Munmap(b[:cap(b)])
		}
	}
	s.slots, s.slotsMap, s.stateMap, s.st, s.relayed = nil, nil, nil, nil, nil
	return nil
}
