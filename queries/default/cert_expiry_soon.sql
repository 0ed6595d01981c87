-- A TLS certificate expires in less than 14 days. Reads expiry timestamps (unix seconds) from
-- blackbox_exporter (`probe_ssl_earliest_cert_expiry`), cert-manager
-- (`certmanager_certificate_expiration_timestamp_seconds`) and x509-certificate-exporter
-- (`x509_cert_not_after`), and day counts from exporters that report them directly
-- (`ssl_cert_expiry_days`). One series per certificate; a renewed certificate resolves it.
CREATE RULE cert_expiry_soon
  SEVERITY 'warning'
  LABELS (team = 'platform')
  SUMMARY '{{service}}: TLS certificate {{cert}} expires in {{days_left}} days'
  DESCRIPTION 'Renew it (or check why cert-manager has not): clients will refuse the connection once it expires.'
  RUNBOOK 'https://runbooks.example/cert-renewal'
AS SELECT service,
          COALESCE(labels['instance'], labels['name'], labels['secret_name'], service) AS cert,
          -- Whole days left, rounded down (written round(x - 0.5): FLOOR() does not parse yet).
          round(CASE WHEN name LIKE '%_days' THEN value ELSE (value - ts / 1000) / 86400 END - 0.5) AS days_left
   FROM metrics
   WHERE name IN ('probe_ssl_earliest_cert_expiry',
                  'certmanager_certificate_expiration_timestamp_seconds',
                  'x509_cert_not_after',
                  'ssl_cert_expiry_days')
     AND CASE WHEN name LIKE '%_days' THEN value ELSE (value - ts / 1000) / 86400 END < 14
   GROUP BY service, name, COALESCE(labels['instance'], labels['name'], labels['secret_name']);
