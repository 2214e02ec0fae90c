//go:build !linux

package vpcd

import "net"

// quickAck is a no-op: TCP_QUICKACK exists only on Linux.
func quickAck(*net.TCPConn) {}
