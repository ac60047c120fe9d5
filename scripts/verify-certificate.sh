#!/usr/bin/env bash
# Verifies a KNK certificate's Ed25519 signature with curl, jq and openssl only.
#   scripts/verify-certificate.sh http://localhost:8080 7QF3-M9XA-2KDP-R4TW-J
# by its verification code (no key needed), or by its number with an API key that
# may see the holder (admin, the issuing unit, the cadre's federation):
#   KNK_KEY=... scripts/verify-certificate.sh http://localhost:8080 KNK-31-2026-000001
# The two downloads (cert.json, keys.json) can be made once and checked later with
# no network: the check itself needs only the files.
set -euo pipefail
base=$1 arg=${2// /}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

case $arg in
KNK-*|certificates/*)
  [ -n "${KNK_KEY:-}" ] || { echo "a certificate number needs KNK_KEY; without a key, use the verification code" >&2; exit 2; }
  curl -sf -H "Authorization: Bearer $KNK_KEY" "$base/v1/certificates/${arg#certificates/}:verify" > cert.json ;;
*)
  curl -sf "$base/v1/verifications/$arg" > cert.json ;;
esac
curl -sf "$base/v1/keys" > keys.json

# The canonical content the signature covers (README, "Verifying a certificate
# offline"): version 2 holds the verification code; an answer without a version is 1.
jq -j '(.canonical_version // 1) as $v
  | "KNK-CERTIFICATE-V\($v)\nnumber:\(.name | ltrimstr("certificates/"))\n"
  + (if $v == 2 then "verification_code:\(.verification_code)\n" elif $v == 1 then "" else error("unknown canonical_version \($v)") end)
  + "holder_name:\(.holder_name)\nprovince_code:\(.province_code)\ntopics:\(.topics | join(","))\nissuer:\(.issuer)\nissue_time:\(.issue_time)\nexpire_time:\(.expire_time)\n"' cert.json > content.txt
jq -r .signature cert.json | base64 -d > sig.bin

# The raw 32-byte public key, wrapped as a SubjectPublicKeyInfo for openssl.
key_id=$(jq -r .key_id cert.json)
{ printf '\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00'
  jq -r --arg id "$key_id" '.keys[] | select(.key_id == $id) | .public_key' keys.json | base64 -d
} > pub.der
openssl pkey -pubin -inform DER -in pub.der -out pub.pem

openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in content.txt -sigfile sig.bin

# A revoked key (GET /v1/keys shows revoked_from) makes every certificate it signed
# at or after that time not valid, whatever the signature says.
revoked_from=$(jq -r --arg id "$key_id" '.keys[] | select(.key_id == $id) | .revoked_from // empty' keys.json)
if [ -n "$revoked_from" ] &&
   [ "$(jq -r '.issue_time | fromdateiso8601' cert.json)" -ge "$(jq -rn --arg t "$revoked_from" '$t | fromdateiso8601')" ]; then
  echo "NOT VALID: key $key_id is revoked for certificates signed from $revoked_from on; ask the issuer for the re-signed certificate" >&2
  exit 1
fi
echo "state: $(jq -r .state cert.json), valid: $(jq -r .valid cert.json), key: $key_id"
