package xdpscan

// The XDP programs in bpf/ are compiled by bpf2go into bpf/*_bpfel.{go,o},
// which are committed so that building and testing need no clang. Run
// `make generate` (clang-19 pinned; CI checks the outputs are fresh).

//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -output-dir bpf -go-package bpf -type scan_event -type udp_echo -type send_slot -type send_state Scan bpf/scan.c
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -output-dir bpf -go-package bpf Responder bpf/responder.c
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -output-dir bpf -go-package bpf -type capture_hdr Capture bpf/capture.c
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -output-dir bpf -go-package bpf Filterbench bpf/filterbench.c
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -output-dir bpf -go-package bpf CaptureTC bpf/capture_tc.c
//go:generate go tool bpf2go -cc clang-19 -cflags "-O2 -g -Wall -Werror" -target bpfel -output-dir bpf -go-package bpf ScanTC bpf/scan_tc.c
