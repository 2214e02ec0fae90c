//go:build linux

package vpcd

import (
	"net"
	"syscall"
)

// quickAck re-arms TCP_QUICKACK: vpcd sends length and payload in two
// send() calls, and with delayed ACKs each APDU would otherwise cost ~44 ms.
// The kernel clears the flag after use, hence calling it on every exchange.
func quickAck(c *net.TCPConn) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	_ = raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}
