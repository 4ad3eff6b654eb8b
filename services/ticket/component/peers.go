package component

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/caller/natsnonce"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/cas"
)

// peerPages are the peers as the CAS pages offer them.
func peerPages(cfg *Config) []cas.PeerPage {
	out := make([]cas.PeerPage, 0, len(cfg.Peers))
	for _, p := range cfg.Peers {
		out = append(out, cas.PeerPage{Name: p.Name, URL: p.URL, Display: p.DisplayName})
	}
	return out
}

// peerSettings reads ticket.peer_key_file and the peers' public keys
// (ticket.peers; ADR 0030).
func peerSettings(cfg *Config) (ticket.PeerSettings, error) {
	out := ticket.PeerSettings{TTL: cfg.PeerAssertionTTL, Peers: map[string]ticket.Peer{}}
	if cfg.PeerKeyFile != "" {
		k, err := readPeerKey(cfg.PeerKeyFile, cfg.KeyFileAllowOpenMode)
		if err != nil {
			return out, fmt.Errorf("ticket.peer_key_file: %w", err)
		}
		out.Key = k
	}
	for i, p := range cfg.Peers {
		keys, err := readPeerPublicKeys(p.PublicKeyFile, cfg.KeyFileAllowOpenMode)
		if err != nil {
			return out, fmt.Errorf("ticket.peers[%d].public_key_file: %w", i, err)
		}
		out.Peers[p.Name] = ticket.Peer{Name: p.Name, URL: p.URL, Keys: keys}
	}
	return out, nil
}

// readPeerKey reads an Ed25519 private key (PKCS#8 PEM), refusing a file
// others may read unless allowOpen.
func readPeerKey(path string, allowOpen bool) (ed25519.PrivateKey, error) {
	data, err := readKeyFile(path, secretMask, allowOpen)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PEM PRIVATE KEY (make one with openssl genpkey -algorithm ed25519)", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: the key is a %T, not Ed25519 (openssl genpkey -algorithm ed25519)", path, k)
	}
	return ek, nil
}

// readPeerPublicKeys reads the Ed25519 public keys (PEM PUBLIC KEY) of a
// file: at least one. A file its group or others may write is refused
// unless allowOpen: whoever writes it adds trust (sec28b L2).
func readPeerPublicKeys(path string, allowOpen bool) ([]ed25519.PublicKey, error) {
	data, err := readKeyFile(path, publicMask, allowOpen)
	if err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			continue
		}
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: key %d: %w", path, len(keys)+1, err)
		}
		ek, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("%s: key %d is a %T, not Ed25519", path, len(keys)+1, k)
		}
		keys = append(keys, ek)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no PEM PUBLIC KEY (openssl pkey -in peer.key -pubout)", path)
	}
	return keys, nil
}

// peerTokens is the store of the peers' assertions and logout tokens used
// (ticket.Deps.Nonces): the platform's store of things seen once
// (natsnonce), bucket UIAS_PEER_TOKENS, with the ticket buckets' replicas
// and timeout.
func peerTokens(js jetstream.JetStream, cfg *Config) *natsnonce.Store {
	return natsnonce.New(js, natsnonce.Options{Replicas: cfg.KVReplicas, Timeout: cfg.StoreTimeout, Bucket: ticket.PeerTokensBucket,
		TTL: ticket.PeerTokensTTL, Description: "UIAS peer centres' assertions and logout tokens used (each is good once)"})
}
