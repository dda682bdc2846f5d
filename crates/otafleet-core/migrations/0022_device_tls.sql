-- Whether the device's last check-in (native or a stock updater's) came over TLS, so the admin
-- sees which devices still send their token and traffic in the clear once the server also
-- serves HTTPS on its port. 1 = HTTPS, 0 = plain HTTP; NULL = not known yet: devices added by
-- the admin or only heard over mDNS, and every device until its first check-in after this
-- migration (nothing recorded before says how they came). Written by crate::devices with every
-- check-in.
ALTER TABLE devices ADD COLUMN tls INTEGER;
