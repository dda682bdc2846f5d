/* ofc_version.h - ordering of firmware version strings.
 *
 * Why it exists: firmware versions in the field are semver ("1.4.0",
 * "v2.0.0-rc.1"), git-describe output ("v1.4.0-3-gdeadbee-dirty") or
 * something else entirely (a bare git hash). The client compares an offered
 * version with the running one to refuse downgrades when configured to, by
 * the same rule as the server (the project's docs/versions.md):
 *
 *  - surrounding blanks and one leading 'v'/'V' before a digit are ignored;
 *    so is build metadata from the first '+' on, and a trailing "-dirty";
 *  - the numeric core (before the first '-') is 1 to 5 dot-separated digit
 *    fields, compared as numbers of any length; a missing field is 0
 *    ("1.2" == "1.2.0");
 *  - a git-describe tail "-N-g<4 to 40 hex>" at the end means N commits after
 *    what precedes it: above that version, by N, below a higher core;
 *  - what is left after the core is a semver pre-release (identifiers of
 *    [0-9A-Za-z-], none empty) and sorts below the release, identifiers
 *    compared per semver 2.0.0 section 11;
 *  - order: core, then pre-release, then commit count;
 *  - anything else (a bare hash, a single number with a suffix, an empty
 *    identifier, 6+ fields) is not a version and is not ordered.
 */
#ifndef OFC_VERSION_H
#define OFC_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

/* Returns <0, 0 or >0 as a is lower than, equal to or higher than b. When
 * either is not a version, the two compare equal only when identical and
 * otherwise by plain byte order (stable, arbitrary: not a version order).
 * NULL counts as the empty string. */
int ofc_version_compare(const char *a, const char *b);

/* 1 when both are versions and a is lower than b by the rule above; 0
 * otherwise (also when either is not a version: no downgrade is claimed). */
int ofc_version_is_older(const char *a, const char *b);

#ifdef __cplusplus
}
#endif

#endif /* OFC_VERSION_H */
