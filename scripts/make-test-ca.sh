#!/usr/bin/env bash
# Makes a test CA and certificates for knkd's TLS with openssl only:
#   scripts/make-test-ca.sh DIR [HOST...]
# DIR/ca.pem            the CA certificate (give it to clients: knkctl --ca, curl --cacert)
# DIR/ca-key.pem        the CA's key (keep it away from servers; only this script uses it)
# DIR/server.pem, DIR/server-key.pem
#                       knkd's certificate (--tls-cert, --tls-key) for localhost,
#                       127.0.0.1, ::1 and every HOST given (a name or an IP address)
# DIR/client.pem, DIR/client-key.pem
#                       a client certificate for an internal service (knkd --client-ca DIR/ca.pem,
#                       knkctl --client-cert/--client-key)
# Run it again with the same DIR to renew the server and client certificates
# under the same CA; knkd picks the new files up by itself (or on SIGHUP).
# A test CA is for tests and staging: production uses the ministry's CA.
set -euo pipefail
dir=${1:?usage: make-test-ca.sh DIR [HOST...]}
shift
mkdir -p "$dir"
umask 077 # keys readable by their owner only
days=${KNK_TEST_CA_DAYS:-365}

if [[ ! -s $dir/ca.pem || ! -s $dir/ca-key.pem ]]; then
	openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/ca-key.pem" -out "$dir/ca.pem" -days $((days * 3)) \
		-subj "/O=KNK test/CN=KNK test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for h in "$@"; do
	if [[ $h =~ ^[0-9.]+$ || $h == *:* ]]; then san+=",IP:$h"; else san+=",DNS:$h"; fi
done

# issue NAME CN EXTENDED_KEY_USAGE [SAN]: a new key and a certificate signed by the CA,
# written to temporary files first and then moved, so knkd never reads half a pair.
issue() {
	local name=$1 cn=$2 eku=$3 alt=${4:-}
	local ext="basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=$eku"
	[[ -n $alt ]] && ext+="
subjectAltName=$alt"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$dir/$name-key.pem.new" -out "$dir/$name.csr" -subj "/O=KNK test/CN=$cn" 2>/dev/null
	openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
		-CAcreateserial -days "$days" -sha256 -out "$dir/$name.pem.new" \
		-extfile <(printf '%s\n' "$ext") 2>/dev/null
	rm -f "$dir/$name.csr"
	mv "$dir/$name-key.pem.new" "$dir/$name-key.pem"
	mv "$dir/$name.pem.new" "$dir/$name.pem"
}

issue server localhost serverAuth "$san"
issue client internal-service clientAuth
chmod 0644 "$dir/ca.pem" "$dir/server.pem" "$dir/client.pem" # certificates are public; keys stay 0600
echo "CA:     $dir/ca.pem"
echo "server: $dir/server.pem $dir/server-key.pem ($san)"
echo "client: $dir/client.pem $dir/client-key.pem"
