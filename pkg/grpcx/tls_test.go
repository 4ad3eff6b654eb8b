package grpcx_test

import "crypto/tls"

func tlsConfig(min uint16) *tls.Config { return &tls.Config{MinVersion: min} }
