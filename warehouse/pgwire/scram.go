package pgwire

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"citybrain/internal/auth"
)

// errBadLogin is what a failed login of any kind reports (no user
// enumeration: an unknown user runs the same exchange with a made-up salt).
var errBadLogin = errors.New("password authentication failed / 用户名或密码错误")

// scram runs a SCRAM-SHA-256 exchange (RFC 5802, RFC 7677) against the
// user's stored verifier; the password never reaches the server.
func (c *conn) scram(user string) (auth.User, error) {
	u, ok := c.srv.Access.Users().Get(user)
	known := ok && !u.Disabled && len(u.StoredKey) > 0
	salt, iters, storedKey, serverKey := u.Salt, u.Iterations, u.StoredKey, u.ServerKey
	if !known {
		salt, iters = sha256Sum([]byte("citybrain-nouser:" + user))[:16], auth.Iterations
		storedKey, serverKey = make([]byte, 32), make([]byte, 32)
		rand.Read(storedKey)
		rand.Read(serverKey)
	}
	c.send(&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}})
	if err := c.flush(); err != nil {
		return auth.User{}, err
	}
	if err := c.be.SetAuthType(pgproto3.AuthTypeSASL); err != nil {
		return auth.User{}, err
	}
	msg, err := c.be.Receive()
	if err != nil {
		return auth.User{}, err
	}
	init, ok := msg.(*pgproto3.SASLInitialResponse)
	if !ok {
		return auth.User{}, fmt.Errorf("expected SASLInitialResponse, got %T", msg)
	}
	if init.AuthMechanism != "SCRAM-SHA-256" {
		return auth.User{}, fmt.Errorf("unsupported SASL mechanism %q: use SCRAM-SHA-256", init.AuthMechanism)
	}
	clientFirst := string(init.Data)
	// gs2-header: "n,," or "y,," (no channel binding), then the bare message.
	parts := strings.SplitN(clientFirst, ",", 3)
	if len(parts) != 3 || (parts[0] != "n" && parts[0] != "y") {
		return auth.User{}, errors.New("SCRAM: channel binding is not supported; connect with channel_binding=disable or prefer")
	}
	gs2 := parts[0] + "," + parts[1] + ","
	bare := parts[2]
	var cnonce string
	for _, kv := range strings.Split(bare, ",") {
		if strings.HasPrefix(kv, "r=") {
			cnonce = kv[2:]
		}
	}
	if cnonce == "" {
		return auth.User{}, errors.New("SCRAM: client nonce missing")
	}
	nb := make([]byte, 18)
	rand.Read(nb)
	nonce := cnonce + base64.StdEncoding.EncodeToString(nb)
	serverFirst := "r=" + nonce + ",s=" + base64.StdEncoding.EncodeToString(salt) + ",i=" + strconv.Itoa(iters)
	c.send(&pgproto3.AuthenticationSASLContinue{Data: []byte(serverFirst)})
	if err := c.flush(); err != nil {
		return auth.User{}, err
	}
	if err := c.be.SetAuthType(pgproto3.AuthTypeSASLContinue); err != nil {
		return auth.User{}, err
	}
	msg, err = c.be.Receive()
	if err != nil {
		return auth.User{}, err
	}
	resp, ok := msg.(*pgproto3.SASLResponse)
	if !ok {
		return auth.User{}, fmt.Errorf("expected SASLResponse, got %T", msg)
	}
	final := string(resp.Data)
	i := strings.LastIndex(final, ",p=")
	if i < 0 {
		return auth.User{}, errBadLogin
	}
	withoutProof := final[:i]
	proof, err := base64.StdEncoding.DecodeString(final[i+3:])
	if err != nil || len(proof) != 32 {
		return auth.User{}, errBadLogin
	}
	var gotNonce, cbind string
	for _, kv := range strings.Split(withoutProof, ",") {
		switch {
		case strings.HasPrefix(kv, "r="):
			gotNonce = kv[2:]
		case strings.HasPrefix(kv, "c="):
			cbind = kv[2:]
		}
	}
	if gotNonce != nonce || cbind != base64.StdEncoding.EncodeToString([]byte(gs2)) {
		return auth.User{}, errBadLogin
	}
	authMsg := []byte(bare + "," + serverFirst + "," + withoutProof)
	sig := hmacSum(storedKey, authMsg)
	clientKey := make([]byte, 32)
	for j := range clientKey {
		clientKey[j] = proof[j] ^ sig[j]
	}
	if subtle.ConstantTimeCompare(sha256Sum(clientKey), storedKey) != 1 || !known {
		return auth.User{}, errBadLogin
	}
	c.send(&pgproto3.AuthenticationSASLFinal{Data: []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(serverKey, authMsg)))})
	return u, nil
}

func hmacSum(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
