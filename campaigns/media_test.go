package campaigns

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
)

// TestMediaFileRefs: payloads that take a media_id may take a stored file
// instead (exactly one); the message lists its files, refuses to render
// until WithMedia resolved them, and WithMedia fills each field.
func TestMediaFileRefs(t *testing.T) {
	t.Parallel()
	file := func(c byte) string { return FileIDPrefix + strings.Repeat(string(c), 64) }
	base := func(mut func(*Campaign)) *Campaign {
		c := &Campaign{Name: "春季", Account: "shop", Kind: KindMass, Audience: AudienceSpec{Source: SourceFollowers}}
		mut(c)
		return c
	}
	custom := base(func(c *Campaign) {
		c.Kind, c.Mass = KindCustom, nil
		c.Custom = &CustomSpec{MsgType: wechat.MsgTypeImage, Image: &MediaRef{File: file('a')}}
	})
	m, err := custom.Compile()
	require.NoError(t, err)
	require.Equal(t, []MediaFile{{Field: "custom.image.file", File: file('a'), Type: wechat.MediaImage, Purpose: MediaTemporary}}, m.MediaFiles())
	require.False(t, m.MediaResolved())
	_, err = m.RenderCustom("oTX0000000000000000000000001", nil)
	require.ErrorIs(t, err, ErrMediaUnresolved)
	require.ErrorContains(t, err, "custom.image.file")
	_, err = m.WithMedia(map[string]string{})
	require.ErrorContains(t, err, "custom.image.file")
	r, err := m.WithMedia(map[string]string{"custom.image.file": "MEDIA_1"})
	require.NoError(t, err)
	out, err := r.RenderCustom("oTX0000000000000000000000001", nil)
	require.NoError(t, err)
	require.Equal(t, "MEDIA_1", out.Image.MediaID)
	_, err = m.RenderCustom("oTX0000000000000000000000001", nil)
	require.ErrorIs(t, err, ErrMediaUnresolved, "WithMedia leaves the message as it was")

	mass := base(func(c *Campaign) {
		c.Mass = &MassSpec{MsgType: "image", Images: &MassImagesSpec{Files: []string{file('b'), file('c')}}}
	})
	m, err = mass.Compile()
	require.NoError(t, err)
	files := m.MediaFiles()
	require.Len(t, files, 2)
	require.Equal(t, "mass.images.files[1]", files[1].Field)
	require.Equal(t, MediaPermanent, files[1].Purpose)
	r, err = m.WithMedia(map[string]string{"mass.images.files[0]": "I0", "mass.images.files[1]": "I1"})
	require.NoError(t, err)
	mm, err := r.RenderMass("cmid")
	require.NoError(t, err)
	require.Equal(t, []string{"I0", "I1"}, mm.Images.MediaIDs)
	_, err = m.RenderMass("cmid")
	require.ErrorIs(t, err, ErrMediaUnresolved)

	video := base(func(c *Campaign) { c.Mass = &MassSpec{MsgType: "mpvideo", MPVideo: &MediaRef{File: file('d')}} })
	m, err = video.Compile()
	require.NoError(t, err)
	require.Equal(t, &wechat.VideoDescription{Title: "春季", Introduction: "春季"}, m.MediaFiles()[0].Video)

	news := base(func(c *Campaign) {
		c.Mass = &MassSpec{MsgType: "mpnews", MPNews: &MassNewsSpec{Articles: []ArticleSpec{{Title: "t", Content: "<p>c</p>", CoverFile: file('e')}}}}
	})
	m, err = news.Compile()
	require.NoError(t, err)
	files = m.MediaFiles()
	require.Len(t, files, 1)
	require.Equal(t, MediaDraft, files[0].Purpose)
	require.True(t, ValidFileID(files[0].File))
	require.Equal(t, []MediaFile{{Field: "mass.mpnews.articles[0].cover_file", File: file('e'), Type: wechat.MediaImage, Purpose: MediaPermanent}}, files[0].Covers())

	refused := []struct {
		name  string
		c     *Campaign
		field string
		want  string
	}{
		{"both", base(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: "voice", Voice: &MediaRef{MediaID: "m", File: file('a')}}
		}), "mass.voice", "set media_id or file, not both"},
		{"neither", base(func(c *Campaign) { c.Mass = &MassSpec{MsgType: "voice", Voice: &MediaRef{}} }), "mass.voice.media_id", "required"},
		{"bad file id", base(func(c *Campaign) { c.Mass = &MassSpec{MsgType: "voice", Voice: &MediaRef{File: "sha256:XYZ"}} }), "mass.voice.file", "not a file id"},
		{"images both", base(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: "image", Images: &MassImagesSpec{MediaIDs: []string{"m"}, Files: []string{file('a')}}}
		}), "mass.images", "set media_ids or files, not both"},
		{"mpnews both", base(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: "mpnews", MPNews: &MassNewsSpec{MediaID: "d", Articles: []ArticleSpec{{Title: "t", Content: "c", CoverFile: file('a')}}}}
		}), "mass.mpnews", "set media_id or articles, not both"},
		{"article without cover", base(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: "mpnews", MPNews: &MassNewsSpec{Articles: []ArticleSpec{{Title: "t", Content: "c"}}}}
		}), "mass.mpnews.articles[0].cover_file", "required"},
		{"article title too long", base(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: "mpnews", MPNews: &MassNewsSpec{Articles: []ArticleSpec{{Title: strings.Repeat("标", 65), Content: "c", CoverFile: file('a')}}}}
		}), "mass.mpnews.articles[0].title", "65 characters, at most 64"},
		{"article with a variable", base(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: "mpnews", MPNews: &MassNewsSpec{Articles: []ArticleSpec{{Title: "t", Content: "hi {{.name}}", CoverFile: file('a')}}}}
		}), "mass.mpnews.articles[0].content", "variables"},
	}
	for _, c := range refused {
		err := c.c.Validate()
		var ve *ValidationError
		require.ErrorAs(t, err, &ve, c.name)
		require.Equal(t, c.field, ve.Errors[0].Field, c.name)
		require.Contains(t, ve.Errors[0].Message, c.want, c.name)
	}
}
