/* ofc_version.h - ordering of firmware version strings.
 *
 * Why it exists: firmware versions in the field are semver ("1.4.0",
 * "v2.0.0-rc.1"), git-describe output ("v1.4.0-3-gdeadbee-dirty") or
 * something else entirely (a bare git hash). The client compares an offered
 * version with the running one to refuse downgrades when configured to.
 *
 * Rules, in order:
 *  - a leading 'v'/'V' is ignored; so is build metadata after '+';
 *  - the numeric core "1.2.3" is compared field by field, missing fields are
 *    0 ("1.2" == "1.2.0"), any number of digits (no overflow);
 *  - a git-describe tail "-N-g<hex>" (optionally followed by "-dirty") means
 *    N commits after the tag: it sorts above the tag and by N;
 *  - "-dirty" alone is ignored;
 *  - any other "-suffix" is a semver pre-release and sorts below the release,
 *    identifiers compared per semver 2.0 section 11;
 *  - strings without a numeric core are not ordered: they compare equal
 *    only when identical, otherwise by plain byte order (stable, arbitrary).
 */
#ifndef OFC_VERSION_H
#define OFC_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

/* Returns <0, 0 or >0 as a is lower than, equal to or higher than b.
 * NULL counts as the empty string. */
int ofc_version_compare(const char *a, const char *b);

#ifdef __cplusplus
}
#endif

#endif /* OFC_VERSION_H */
