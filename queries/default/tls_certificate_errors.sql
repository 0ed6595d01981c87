-- TLS handshakes are failing on certificates: an expired or untrusted certificate on this
-- service or on one it calls. Matches Go (`x509: certificate has expired or is not yet
-- valid`, `tls: bad certificate`), OpenSSL/curl (`certificate verify failed`,
-- `SSL certificate problem`) and Java (`PKIX path validation failed`, `CertificateExpiredException`).
CREATE RULE tls_certificate_errors
  SEVERITY 'critical'
  LABELS (team = 'platform')
  SUMMARY '{{service}}: {{failures}} TLS certificate failures in 1m, e.g. {{example}}'
  DESCRIPTION 'Find which certificate: the message names the host. Expired: renew and reload it. Untrusted: check the CA bundle the client uses.'
  RUNBOOK 'https://runbooks.example/cert-renewal'
AS SELECT service, count(*) AS failures, first(message) AS example
   FROM logs
   WHERE level IN ('warn', 'error', 'fatal')
     AND regexp_like(message, '(?i)x509: certificate|tls: bad certificate|certificate verify failed|ssl certificate problem|pkix path|certificateexpired|certificate has expired')
   GROUP BY service, TUMBLE(ts, INTERVAL '1' MINUTE)
   HAVING count(*) >= 5
FOR INTERVAL '1' MINUTE
KEEP FIRING FOR INTERVAL '5' MINUTE;
