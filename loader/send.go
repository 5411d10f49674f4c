package loader

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpscan/xdpscan/bpf"
)

// SendFrame is the longest frame a Sender sends (SEND_FRAME in
// bpf/include/send.h).
const SendFrame = 256

// slotStride is one send_slot in the mmapped array: the kernel rounds an
// array map's values up to 8 bytes.
const slotStride = (int(unsafe.Sizeof(bpf.ScanSendSlot{})) + 7) &^ 7

// sendBatch is live-frames mode's batch: frames are transmitted (and the
// target's NAPI runs) every sendBatch runs; 256 is the kernel's maximum.
const sendBatch = 64

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
	slots []byte             // send_slots, mmapped
	state []byte             // send_states, mmapped
	st    *bpf.ScanSendState // &state[0]
	data  []byte             // data_in: send_magic, then the page every run starts from
}

// Sender maps the transmitter's slots into memory. The program must have
// been loaded with ScanConfig.SendSlots.
func (s *Scan) Sender() (*Sender, error) {
	if s.sendSlots == 0 {
		return nil, errors.New("scan program loaded without a transmitter (ScanConfig.SendSlots is 0)")
	}
	tx := &Sender{prog: s.Objects.XdpscanScan, n: int(s.sendSlots), data: make([]byte, sendMetaLen+SendFrame)}
	binary.NativeEndian.PutUint64(tx.data, s.sendMagic)
	var err error
	if tx.slots, err = mmapArray(s.Objects.SendSlots, tx.n*slotStride); err != nil {
		return nil, err
	}
	if tx.state, err = mmapArray(s.Objects.SendStates, int(unsafe.Sizeof(bpf.ScanSendState{}))); err != nil {
		tx.Close()
		return nil, err
	}
	tx.st = (*bpf.ScanSendState)(unsafe.Pointer(&tx.state[0]))
	return tx, nil
}

// sendMetaLen is the metadata that marks a transmitter run: send_magic.
const sendMetaLen = 8

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
// with index ifindex, in the current network namespace. It returns how many
// the program handed to XDP_TX; the kernel reports no transmit failure to
// the caller (see Sender), so callers check the interface's counters.
func (s *Sender) Send(ifindex int, lens []int) (int, error) {
	n := len(lens)
	if n == 0 {
		return 0, nil
	}
	if n > s.n {
		return 0, fmt.Errorf("send %d frames: at most %d per batch", n, s.n)
	}
	before := s.st.Sent
	s.SetBatch(lens)
	_, err := s.prog.Run(&ebpf.RunOptions{
		Data:      s.data,
		Context:   s.context(ifindex),
		Repeat:    uint32(n),
		Flags:     unix.BPF_F_TEST_XDP_LIVE_FRAMES,
		BatchSize: min(uint32(n), sendBatch),
	})
	sent := int(s.st.Sent - before)
	if err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			return sent, fmt.Errorf("send from XDP (BPF_PROG_RUN live frames, Linux 5.18+) on ifindex %d: %w", ifindex, err)
		}
		return sent, fmt.Errorf("send from XDP on ifindex %d: %w", ifindex, err)
	}
	if s.st.Next != uint32(n) {
		return sent, fmt.Errorf("send from XDP: the kernel ran %d of %d frames", s.st.Next, n)
	}
	return sent, nil
}

// Refused is how many slots the program refused (a length out of range).
func (s *Sender) Refused() uint64 { return s.st.Bad }

// RunInput is what one transmitter run of the scan program takes: data_in
// (send_magic as metadata, then the page) and its context (tests run it
// themselves, without live frames, to see the frame it makes).
func (s *Sender) RunInput(ifindex int) (data []byte, ctx XDPMd) { return s.data, s.context(ifindex) }

func (s *Sender) context(ifindex int) XDPMd {
	return XDPMd{Data: sendMetaLen, DataEnd: uint32(len(s.data)), IngressIfindex: uint32(ifindex)}
}

// SetBatch sets the slots the next runs send.
func (s *Sender) SetBatch(lens []int) {
	for i, l := range lens {
		s.setLen(i, l)
	}
	s.st.Next, s.st.Limit, s.st.Page = 0, uint32(len(lens)), SendFrame
}

// Close unmaps the slots; the program stays the Scan's.
func (s *Sender) Close() error {
	for _, b := range [][]byte{s.slots, s.state} {
		if b != nil {
			_ = unix.Munmap(b[:cap(b)])
		}
	}
	s.slots, s.state, s.st = nil, nil, nil
	return nil
}
