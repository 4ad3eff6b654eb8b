package e2e

import (
	"path/filepath"
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/discovery/etcdtest"
	"github.com/uias/uias/pkg/events/eventstest"
)

// testInternalKey is the key the processes of a test deployment share.
const testInternalKey = "0123456789abcdef-internal"

// deployment is one UIAS deployment in microservices mode for a test: an
// embedded etcd and NATS (JetStream) in a temporary directory, stopped
// when the test ends, and the configs of its processes.
type deployment struct {
	dir       string
	endpoints []string
	nats      *server.Server
}

func newDeployment(t *testing.T) *deployment {
	t.Helper()
	d := &deployment{dir: t.TempDir()}
	etcd, endpoints, err := etcdtest.Start(filepath.Join(d.dir, "etcd"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	d.endpoints = endpoints
	d.nats = eventstest.NATSIn(t, filepath.Join(d.dir, "nats"), -1)
	return d
}

// config is the config of a process running target with its data under
// the deployment's directory in data: etcd discovery (2 s lease), the
// deployment's NATS, the shared internal key.
func (d *deployment) config(target, data string) config.Config {
	c := testConfig(filepath.Join(d.dir, data))
	c.Target = target
	c.Etcd.Endpoints, c.Etcd.LeaseTTL = d.endpoints, 2
	c.NATS.URL, c.NATS.Embedded, c.Discovery = d.nats.ClientURL(), false, config.DiscoveryEtcd
	c.InternalKey = testInternalKey
	c.Complete()
	return c
}
