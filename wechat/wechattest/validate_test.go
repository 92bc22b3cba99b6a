package wechattest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestKeywordRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		key   string
		value string
		ok    bool
	}{
		{"thing1", "您的订单已发货", true},
		{"thing1", strings.Repeat("好", 20), true},
		{"thing1", strings.Repeat("好", 21), false},
		{"thing1", "", false},
		{"thing1", "line\nbreak", false},
		{"thing1", "tab\there", false},
		{"thing1", "emoji 🎉 ok", true},
		{"short_thing2", "五个字以内", true},
		{"short_thing2", "超过五个字了", false},
		{"number2", "12345", true},
		{"number2", "12.50", true},
		{"number2", "-1", false},
		{"number2", "1.", false},
		{"number2", strings.Repeat("9", 33), false},
		{"letter3", "abcXYZ", true},
		{"letter3", "abc1", false},
		{"symbol4", "%$#", true},
		{"symbol4", "a", false},
		{"symbol4", "!!!!!!", false},
		{"character_string5", "SN-2026_03/10#42", true},
		{"character_string5", "has space", false},
		{"character_string5", "订单1", false},
		{"character_string5", strings.Repeat("x", 32), true},
		{"character_string5", strings.Repeat("x", 33), false},
		{"time6", "15:01", true},
		{"time6", "9:05:59", true},
		{"time6", "2019-12-25 09:42", true},
		{"time6", "2019年10月1日 15:01", true},
		{"time6", "2019-12-25 09:42 ~ 2019-12-25 10:42", true},
		{"time6", "2019-12-25", false},
		{"time6", "24:00", false},
		{"time6", "12:60", false},
		{"date7", "2019-12-25", true},
		{"date7", "2019/1/5", true},
		{"date7", "2019年10月1日", true},
		{"date7", "2019-12-25 09:42:00", true},
		{"date7", "2019-12-25~2019-12-31", true},
		{"date7", "2024-02-29", true},
		{"date7", "2023-02-29", false},
		{"date7", "19-12-25", false},
		{"date7", "tomorrow", false},
		{"amount8", "¥39.80", true},
		{"amount8", "￥1000", true},
		{"amount8", "$5", true},
		{"amount8", "39.80元", true},
		{"amount8", "¥1234567890", true},
		{"amount8", "¥12345678901", false},
		{"amount8", "¥1.234", false},
		{"amount8", "¥¥1", false},
		{"amount8", "free", false},
		{"phone_number9", "+86 (10)1234-5678", true},
		{"phone_number9", "400-123-4567", true},
		{"phone_number9", "+-()", false},
		{"phone_number9", "123456789012345678", false},
		{"car_number10", "粤B12345", true},
		{"car_number10", "粤AD12345", true},
		{"car_number10", "京A1234学", true},
		{"car_number10", "A粤1234", false},
		{"car_number10", "粤AD123456", false},
		{"name11", "张三", true},
		{"name11", "阿卜杜·热合曼", true},
		{"name11", "John O'Brien", true},
		{"name11", "张三abc", false},
		{"name11", "R2D2", false},
		{"name11", strings.Repeat("张", 11), false},
		{"phrase12", "已发货", true},
		{"phrase12", "五个汉字啊", true},
		{"phrase12", "六个汉字啊啊", false},
		{"phrase12", "ok", false},
		{"const13", "", true},
		{"const13", "已完成", true},
		{"const13", strings.Repeat("x", 21), false},
		{"keyword1", "historical template", true},
		{"keyword1", strings.Repeat("x", 21), false},
		{"first", "anything\ngoes", true},
		{"remark", "", true},
	}
	for _, tc := range cases {
		require.Equal(t, tc.ok, validKeywordValue(tc.key, tc.value), "%s = %q", tc.key, tc.value)
	}
}

func TestKeywordKeys(t *testing.T) {
	t.Parallel()
	for key, ok := range map[string]bool{
		"thing1": true, "character_string12": true, "first": true, "keyword": true,
		"": false, "1": false, "Thing1": false, "thing-1": false, "_x": false, "thing1a": false,
		strings.Repeat("a", 33): false,
	} {
		require.Equal(t, ok, validKeywordKey(key), key)
	}
}

func TestOpenIDFormat(t *testing.T) {
	t.Parallel()
	require.True(t, validOpenID("oia2TjuEGTNoeX76QEjQNrcURxG8"))
	require.True(t, validOpenID("o_-0123456789abcdefghijklmno"))
	require.False(t, validOpenID("xia2TjuEGTNoeX76QEjQNrcURxG8"))
	require.False(t, validOpenID("oia2TjuEGTNoeX76QEjQNrcURxG"))
	require.False(t, validOpenID("oia2TjuEGTNoeX76QEjQNrcURxG8x"))
	require.False(t, validOpenID("oia2TjuEGTNoeX76QEjQNrcURx+8"))
}

func TestCheckCharset(t *testing.T) {
	t.Parallel()
	require.Equal(t, 0, checkCharset([]byte(`{"a":"中文 \" \\ \n"}`)))
	require.Equal(t, 0, checkCharset([]byte(`{"a":"C:\\users"}`)))
	require.Equal(t, 40033, checkCharset([]byte(`{"a":"\u4e2d"}`)))
	require.Equal(t, 40033, checkCharset([]byte(`{"a":"\\\u4e2d"}`)))
	require.Equal(t, 40033, checkCharset([]byte("{\"a\":\"\xc3\"}")))
}
