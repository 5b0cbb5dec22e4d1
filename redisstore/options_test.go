package redisstore

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pushhub/push"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// TestURLPasswordDB: the URL's password and database are used, and the key
// prefix starts every key.
func TestURLPasswordDB(t *testing.T) {
	r := startRedis(t, "--requirepass", "s3cret")
	ctx := testCtx(t, 30*time.Second)
	_, err := New(ctx, Options{URL: fmt.Sprintf("redis://:wrong@127.0.0.1:%d/3", r.Port())})
	require.Error(t, err, "a wrong password is refused")
	require.NotErrorIs(t, err, push.ErrStoreUnavailable, "a wrong password is not an outage: %v", err)

	s, err := New(ctx, Options{URL: fmt.Sprintf("redis://:s3cret@127.0.0.1:%d/3", r.Port()), KeyPrefix: "app1:"})
	require.NoError(t, err)
	defer s.Close()
	_, _, err = s.Publish(ctx, "room", &push.Message{Data: []byte("x")}, push.ChannelConfig{BufferLength: 5})
	require.NoError(t, err)

	raw := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.Port()), Password: "s3cret", DB: 3})
	defer raw.Close()
	n, err := raw.Exists(ctx, "app1:c:room", "app1:m:room").Result()
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "the channel's keys are in DB 3 under the prefix")
	raw0 := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.Port()), Password: "s3cret"})
	defer raw0.Close()
	n, err = raw0.DBSize(ctx).Result()
	require.NoError(t, err)
	require.Zero(t, n, "DB 0 stays empty")
}

// TestTLS: a rediss:// URL talks TLS, verified against Options.TLSConfig.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	pool := writeCerts(t, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := startRedis(t, "--port", "0", "--tls-port", fmt.Sprint(port),
		"--tls-cert-file", filepath.Join(dir, "cert.pem"), "--tls-key-file", filepath.Join(dir, "key.pem"),
		"--tls-ca-cert-file", filepath.Join(dir, "cert.pem"), "--tls-auth-clients", "no")
	_ = r
	ctx := testCtx(t, 30*time.Second)
	url := fmt.Sprintf("rediss://127.0.0.1:%d/0", port)

	_, err = New(ctx, Options{URL: url})
	require.Error(t, err, "an unknown CA is refused")

	s, err := New(ctx, Options{URL: url, TLSConfig: &tls.Config{RootCAs: pool}})
	require.NoError(t, err)
	defer s.Close()
	got := make(chan push.Event, 1)
	cancel := s.Watch(func(e push.Event) { got <- e })
	defer cancel()
	m, _, err := s.Publish(ctx, "secure", &push.Message{Data: []byte("over TLS")}, push.ChannelConfig{BufferLength: 5})
	require.NoError(t, err)
	select {
	case e := <-got:
		require.Equal(t, m.ID, e.Message.ID)
		require.Equal(t, "over TLS", string(e.Message.Data))
	case <-ctx.Done():
		t.Fatal("no notification over TLS")
	}
}

// writeCerts writes a self-signed certificate for 127.0.0.1 to dir and
// returns a pool that trusts it.
func writeCerts(t *testing.T, dir string) *x509.CertPool {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "redisstore test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

// crash stops s as a killed process would: no more heartbeats, and its
// subscriber counts are left behind in Redis.
func (s *Store) crash() {
	s.once.Do(func() {
		s.closed.Store(true)
		s.cancel()
		s.psMu.Lock()
		s.ps.Close()
		s.psMu.Unlock()
		s.wg.Wait()
		s.rdb.Close()
	})
}

// TestCrashedNodeCounts: the subscribers counted by a node that crashed stop
// counting after NodeTTL, and the channel they kept alive then expires.
func TestCrashedNodeCounts(t *testing.T) {
	r := startRedis(t)
	ctx := testCtx(t, 30*time.Second)
	open := func() *Store {
		s, err := New(ctx, Options{URL: r.URL(0), KeyPrefix: "crash:", NodeTTL: 600 * time.Millisecond})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	cfg := push.ChannelConfig{ChannelTimeout: time.Second}
	for i := 0; i < 2; i++ {
		_, err := a.AddSubscriber(ctx, "held", cfg, true)
		require.NoError(t, err)
	}
	ci, err := b.AddSubscriber(ctx, "held", cfg, true)
	require.NoError(t, err)
	require.Equal(t, 3, ci.Subscribers)
	require.NoError(t, b.RemoveSubscriber(ctx, "held"))
	a.crash()
	waitSubscribers(t, b, "held", 0)
	require.Eventually(t, func() bool {
		_, err := b.ChannelInfo(ctx, "held")
		return errors.Is(err, push.ErrChannelNotFound)
	}, 20*time.Second, 20*time.Millisecond, "the channel the crashed node kept alive expires")
}

// TestIDsAfterDataLoss: Redis restarted without persistence lost every key,
// yet a node's next id is still greater than the ids it saw (I1).
func TestIDsAfterDataLoss(t *testing.T) {
	r := startRedis(t)
	s := newTestStore(t, r, "")
	ctx := testCtx(t, 30*time.Second)
	cfg := push.ChannelConfig{BufferLength: 10}
	var last push.MessageID
	for i := 0; i < 50; i++ {
		m, _, err := s.Publish(ctx, "ids", &push.Message{Data: []byte("x")}, cfg)
		require.NoError(t, err)
		last = m.ID
	}
	r.Kill()
	r.Restart()
	var m *push.Message
	require.Eventually(t, func() bool {
		var err error
		m, _, err = s.Publish(ctx, "ids", &push.Message{Data: []byte("y")}, cfg)
		return err == nil
	}, 20*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, m.ID.Compare(last), "id %v after a data loss, the last before was %v", m.ID, last)
}

// TestCountsAfterDataLoss: after Redis restarted without persistence, a node
// writes back the subscribers it holds, creating their channel again.
func TestCountsAfterDataLoss(t *testing.T) {
	r := startRedis(t)
	s := newTestStore(t, r, "")
	ctx := testCtx(t, 30*time.Second)
	cfg := push.ChannelConfig{ChannelTimeout: time.Minute}
	for i := 0; i < 2; i++ {
		_, err := s.AddSubscriber(ctx, "held", cfg, true)
		require.NoError(t, err)
	}
	r.Kill()
	r.Restart()
	waitSubscribers(t, s, "held", 2)
	require.NoError(t, s.RemoveSubscriber(ctx, "held"))
	ci, err := s.ChannelInfo(ctx, "held")
	require.NoError(t, err)
	require.Equal(t, 1, ci.Subscribers)
}
