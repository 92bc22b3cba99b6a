package wechattest

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkTemplateSend measures template/send over real loopback HTTP,
// client and server in one process, every call a new delivery (distinct
// client_msg_id). It reports req/s.
func BenchmarkTemplateSend(b *testing.B) {
	srv := Start(b, Config{Followers: 1000})
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxIdleConns: 256}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}

	body := mustJSON(b, map[string]any{"grant_type": "client_credential", "appid": AppIDDefault, "secret": SecretDefault})
	resp, err := client.Post(srv.URL()+"/cgi-bin/stable_token", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		b.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	tok := string(raw[len(`{"access_token":"`) : len(`{"access_token":"`)+tokenLen])
	url := srv.URL() + "/cgi-bin/message/template/send?access_token=" + tok
	followers := srv.FollowerOpenIDs()

	var seq atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var buf []byte
		for pb.Next() {
			n := seq.Add(1)
			buf = append(buf[:0], `{"touser":"`...)
			buf = append(buf, followers[n%int64(len(followers))]...)
			buf = append(buf, `","template_id":"TPL_ORDER_SHIPPED","client_msg_id":"bench-`...)
			buf = strconv.AppendInt(buf, n, 10)
			buf = append(buf, `","url":"https://example.com/o?id=42&x=1","data":{"thing1":{"value":"您的订单已发货"},"character_string2":{"value":"SN-20260310-0042"},"time3":{"value":"2026-03-10 09:00"},"amount4":{"value":"¥39.80"}}}`...)
			resp, err := client.Post(url, "application/json", bytes.NewReader(buf))
			if err != nil {
				b.Error(err)
				return
			}
			out, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.HasPrefix(out, []byte(`{"errcode":0,`)) {
				b.Errorf("answer %s", out)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	if got := srv.Stats().Deliveries; got != int64(b.N) {
		b.Fatalf("deliveries %d, want %d", got, b.N)
	}
}

// BenchmarkTemplateSendHandler measures the handler without HTTP: parsing,
// validation, dedupe and recording.
func BenchmarkTemplateSendHandler(b *testing.B) {
	s, err := New(Config{})
	if err != nil {
		b.Fatal(err)
	}
	acct := s.accounts[AppIDDefault]
	now := s.set.now()
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		x := &exchange{}
		for pb.Next() {
			n := seq.Add(1)
			x.body = append(x.body[:0], `{"touser":"oia2TjuEGTNoeX76QEjQNrcURxG8","template_id":"TPL_ORDER_SHIPPED","client_msg_id":"bench-`...)
			x.body = strconv.AppendInt(x.body, n, 10)
			x.body = append(x.body, `","data":{"thing1":{"value":"您的订单已发货"},"character_string2":{"value":"SN-20260310-0042"},"time3":{"value":"2026-03-10 09:00"},"amount4":{"value":"¥39.80"}}}`...)
			x.out = x.out[:0]
			if out := s.templateSend(x, acct, now); out.code != 0 {
				b.Fatalf("errcode %d", out.code)
			}
		}
	})
}
