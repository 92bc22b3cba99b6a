package callback_test

import (
	"bytes"
	"encoding/base64"
	"testing"

	"github.com/wxmass/wxmass/wechat/callback"
)

// FuzzParseEvent: no input panics the XML decoder, and what it accepts
// satisfies the Event's invariants.
func FuzzParseEvent(f *testing.F) {
	for _, s := range []string{
		receiptXML("oia2TjuEGTNoeX76QEjQNrcURxG8", 200163836, "success", 1395658920),
		receiptXML("o1", 1, "failed: system failed", 1),
		`<xml><ToUserName>gh</ToUserName><Encrypt><![CDATA[abc=]]></Encrypt></xml>`,
		`<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><MsgId>9</MsgId></xml>`,
		`<xml><![CDATA[]]]]><![CDATA[>]]></xml>`,
		`<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x "y">]><xml>&x;</xml>`,
		`<xml><MsgID>-0</MsgID></xml>`,
		"", "<", "<xml>", "<xml></xml><xml>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := callback.ParseEvent(body)
		if err != nil {
			if e != (callback.Event{}) {
				t.Fatalf("error %v with a non-zero event %+v", err, e)
			}
			return
		}
		if e.ToUserName == "" || e.FromUserName == "" || e.MsgType == "" || e.CreateTime < 0 || e.MsgID < 0 {
			t.Fatalf("accepted an incomplete event %+v", e)
		}
		if e.IsReceipt() != (e.Delivery != callback.DeliveryNone) {
			t.Fatalf("delivery %q for event %q", e.Delivery, e.Event)
		}
		if len(e.Reason) > callback.ReasonMax {
			t.Fatalf("reason of %d bytes", len(e.Reason))
		}
	})
}

// FuzzDecrypt: no ciphertext panics Decrypt, and nothing decrypts under
// the wrong appid; what decrypts is shorter than its ciphertext.
func FuzzDecrypt(f *testing.F) {
	c, err := callback.NewCrypter(testKey, testAppID)
	if err != nil {
		f.Fatal(err)
	}
	for _, msg := range []string{"", "<xml/>", receiptXML("o1", 1, "success", 1)} {
		enc, err := c.Encrypt([]byte(msg))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add("")
	f.Add("====")
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	f.Add(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 48)))
	f.Fuzz(func(t *testing.T, in string) {
		msg, err := c.Decrypt(in)
		if err != nil {
			if msg != nil {
				t.Fatalf("error %v with a message", err)
			}
			return
		}
		if len(msg) >= len(in) {
			t.Fatalf("%d-byte message out of %d bytes of base64", len(msg), len(in))
		}
	})
}

// FuzzEncryptRoundTrip: every message survives Encrypt then Decrypt.
func FuzzEncryptRoundTrip(f *testing.F) {
	c, err := callback.NewCrypter(testKey, testAppID)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(""))
	f.Add([]byte("<xml><a>1</a></xml>"))
	f.Add(bytes.Repeat([]byte{0x20}, 32))
	f.Fuzz(func(t *testing.T, msg []byte) {
		enc, err := c.Encrypt(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Decrypt(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("got %q, want %q", got, msg)
		}
	})
}
