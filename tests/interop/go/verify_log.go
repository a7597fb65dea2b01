// Command verify_log checks a running datatrust log with Go's golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog, code datatrust did not write:
//
//   - the checkpoint served at <log-url>/checkpoint verifies with the trust's vkey;
//   - Go, reading datatrust's C2SP tiles, recomputes the checkpoint's root;
//   - every receipt (.tlog-proof) in -receipts verifies (tlog.CheckRecord);
//   - datatrust's consistency proof in -consistency, and Go's own computed from the tiles,
//     prove the -old checkpoint is a prefix of the latest (tlog.CheckTree);
//   - Go's inclusion proofs from the tiles check for a spread of indices.
//
// Build with GO111MODULE=off GOPATH=/usr/share/gocode (Debian's golang-golang-x-mod-dev).
// Prints "N passed, M failed"; exits 1 on any failure.
package main

import (
	"bufio"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var passed, failed int

func check(name string, err error) {
	if err != nil {
		failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	passed++
	fmt.Printf("ok   %s\n", name)
}

func get(url string) ([]byte, error) {
	response, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer response.Body.Close()
	body, err := io.ReadAll(response.Body)
	if err != nil {
		return nil, err
	}
	if response.StatusCode != 200 {
		return nil, fmt.Errorf("%s: HTTP %d: %s", url, response.StatusCode, body)
	}
	return body, nil
}

// checkpoint opens a signed checkpoint note and parses origin, size and root.
func checkpoint(text []byte, verifier note.Verifier) (tlog.Tree, error) {
	opened, err := note.Open(text, note.VerifierList(verifier))
	if err != nil {
		return tlog.Tree{}, err
	}
	lines := strings.Split(opened.Text, "\n")
	if len(lines) != 4 || lines[3] != "" {
		return tlog.Tree{}, fmt.Errorf("checkpoint has %d lines", len(lines)-1)
	}
	if lines[0] != verifier.Name() {
		return tlog.Tree{}, fmt.Errorf("origin %q is not the key name %q", lines[0], verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil {
		return tlog.Tree{}, err
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return tlog.Tree{}, err
	}
	return tlog.Tree{N: size, Hash: root}, nil
}

// tiles reads C2SP tile paths (tile/<L>/<N>[.p/<W>]); Go's own Tile.Path is the older
// sumdb layout, so only the hashing and proof code is Go's here.
type tiles struct{ prefix string }

func (t tiles) Height() int { return 8 }

func (t tiles) ReadTiles(requested []tlog.Tile) ([][]byte, error) {
	data := make([][]byte, len(requested))
	for i, tile := range requested {
		path := fmt.Sprintf("%s/tile/%d/%s", t.prefix, tile.L, indexPath(tile.N))
		if tile.W != 256 {
			path += fmt.Sprintf(".p/%d", tile.W)
		}
		body, err := get(path)
		if err != nil {
			return nil, err
		}
		data[i] = body
	}
	return data, nil
}

func (t tiles) SaveTiles([]tlog.Tile, [][]byte) {}

func indexPath(n int64) string {
	groups := []string{fmt.Sprintf("%03d", n%1000)}
	for n /= 1000; n > 0; n /= 1000 {
		groups = append([]string{fmt.Sprintf("x%03d", n%1000)}, groups...)
	}
	return strings.Join(groups, "/")
}

// receipt parses a c2sp.org/tlog-proof file.
func receipt(text string) (entry []byte, index int64, proof tlog.RecordProof, checkpointNote []byte, err error) {
	head, rest, found := strings.Cut(text, "\n\n")
	if !found {
		return nil, 0, nil, nil, fmt.Errorf("no blank line")
	}
	scanner := bufio.NewScanner(strings.NewReader(head))
	scanner.Scan()
	if scanner.Text() != "c2sp.org/tlog-proof@v1" {
		return nil, 0, nil, nil, fmt.Errorf("bad header %q", scanner.Text())
	}
	for scanner.Scan() {
		line := scanner.Text()
		switch {
		case strings.HasPrefix(line, "extra "):
			entry, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(line, "extra "))
		case strings.HasPrefix(line, "index "):
			index, err = strconv.ParseInt(strings.TrimPrefix(line, "index "), 10, 64)
		default:
			var hash tlog.Hash
			hash, err = tlog.ParseHash(line)
			proof = append(proof, hash)
		}
		if err != nil {
			return nil, 0, nil, nil, err
		}
	}
	return entry, index, proof, []byte(rest), nil
}

func main() {
	logURL := flag.String("log-url", "", "the log's HTTP prefix, e.g. http://127.0.0.1:8080/log")
	vkey := flag.String("vkey", "", "the log's verifier key")
	receipts := flag.String("receipts", "", "directory of .tlog-proof files")
	old := flag.String("old", "", "an earlier checkpoint note")
	consistency := flag.String("consistency", "", "datatrust's consistency proof from -old to the latest, one base64 hash a line")
	license := flag.String("license", "", "optional: a license note to verify with -license-vkey")
	licenseVkey := flag.String("license-vkey", "", "the trust's license verifier key")
	flag.Parse()

	verifier, err := note.NewVerifier(*vkey)
	if err != nil {
		fmt.Println("bad vkey:", err)
		os.Exit(1)
	}
	body, err := get(*logURL + "/checkpoint")
	check("fetch the checkpoint", err)
	latest, err := checkpoint(body, verifier)
	check("the checkpoint verifies with note.Open", err)
	if failed > 0 {
		fmt.Printf("%d passed, %d failed\n", passed, failed)
		os.Exit(1)
	}

	reader := tlog.TileHashReader(latest, tiles{*logURL})
	root, err := tlog.TreeHash(latest.N, reader)
	if err == nil && root != latest.Hash {
		err = fmt.Errorf("Go computes %v from the tiles, the checkpoint says %v", root, latest.Hash)
	}
	check(fmt.Sprintf("tlog.TreeHash over datatrust's tiles matches the root at size %d", latest.N), err)

	files, _ := filepath.Glob(filepath.Join(*receipts, "*.tlog-proof"))
	if len(files) == 0 {
		check("receipts to check", fmt.Errorf("none in %s", *receipts))
	}
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err == nil {
			var entry []byte
			var index int64
			var proof tlog.RecordProof
			var checkpointNote []byte
			entry, index, proof, checkpointNote, err = receipt(string(text))
			if err == nil {
				var tree tlog.Tree
				tree, err = checkpoint(checkpointNote, verifier)
				if err == nil {
					err = tlog.CheckRecord(proof, tree.N, tree.Hash, index, tlog.RecordHash(entry))
				}
			}
		}
		check("tlog.CheckRecord accepts "+filepath.Base(file), err)
	}

	oldText, err := os.ReadFile(*old)
	check("read the old checkpoint", err)
	previous, err := checkpoint(oldText, verifier)
	check("the old checkpoint verifies", err)
	if err == nil {
		var ours tlog.TreeProof
		text, err := os.ReadFile(*consistency)
		if err == nil {
			for _, line := range strings.Fields(string(text)) {
				hash, parseErr := tlog.ParseHash(line)
				if parseErr != nil {
					err = parseErr
					break
				}
				ours = append(ours, hash)
			}
		}
		if err == nil {
			err = tlog.CheckTree(ours, latest.N, latest.Hash, previous.N, previous.Hash)
		}
		check(fmt.Sprintf("tlog.CheckTree accepts datatrust's consistency proof %d -> %d", previous.N, latest.N), err)

		theirs, err := tlog.ProveTree(latest.N, previous.N, reader)
		if err == nil {
			err = tlog.CheckTree(theirs, latest.N, latest.Hash, previous.N, previous.Hash)
		}
		check("Go's own consistency proof from the tiles checks", err)
	}

	for _, index := range []int64{0, 1, 255, 256, latest.N / 2, latest.N - 1} {
		if index < 0 || index >= latest.N {
			continue
		}
		proof, err := tlog.ProveRecord(latest.N, index, reader)
		if err == nil {
			var leaf []tlog.Hash
			leaf, err = reader.ReadHashes([]int64{tlog.StoredHashIndex(0, index)})
			if err == nil {
				err = tlog.CheckRecord(proof, latest.N, latest.Hash, index, leaf[0])
			}
		}
		check(fmt.Sprintf("Go's inclusion proof for entry %d from the tiles checks", index), err)
	}

	if *license != "" {
		text, err := os.ReadFile(*license)
		if err == nil {
			var licenseVerifier note.Verifier
			licenseVerifier, err = note.NewVerifier(*licenseVkey)
			if err == nil {
				var opened *note.Note
				opened, err = note.Open(text, note.VerifierList(licenseVerifier))
				if err == nil && !strings.HasPrefix(opened.Text, "datatrust license v1\n") {
					err = fmt.Errorf("not a datatrust license: %q", opened.Text)
				}
			}
		}
		check("note.Open verifies the license with the license vkey", err)
		// The same license must not verify under the log key: the keys have distinct names.
		_, err = note.Open(text, note.VerifierList(verifier))
		if err == nil {
			err = fmt.Errorf("a license verified under the log key")
		} else {
			err = nil
		}
		check("the license does not verify under the log key", err)
	}

	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
