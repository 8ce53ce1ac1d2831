/**
 * Anchor ids for headings, made the way GitHub makes them so that links written
 * for a README on GitHub (`#getting-started`) keep working in the rendered page:
 * lowercase, every character but letters, digits, `_`, `-` and spaces dropped,
 * spaces turned into `-`, and a repeated id suffixed `-1`, `-2`, ….
 */
export interface HeadingSlugger {
  /** The id for the next heading with this plain text; unique within this slugger. */
  slug(text: string): string;
}

/** Letters and combining marks, digits, connector punctuation (`_`), `-` and space are kept. */
const DROPPED = /[^\p{L}\p{M}\p{N}\p{Pc} -]/gu;

/** Id of a heading whose text leaves nothing (only punctuation or emoji). */
const EMPTY_SLUG = 'section';

/** One per document: the `-1`, `-2` suffixes count repeats within that document only. */
export function createHeadingSlugger(): HeadingSlugger {
  // Seen ids and, for each base id, the last suffix given to it.
  const taken = new Set<string>();
  const lastSuffix = new Map<string, number>();
  return {
    slug(text) {
      const base = text.toLowerCase().replace(DROPPED, '').replace(/ /g, '-') || EMPTY_SLUG;
      let slug = base;
      let suffix = lastSuffix.get(base) ?? 0;
      // A heading may itself read like a suffixed one ("Setup 1" after two "Setup"s).
      while (taken.has(slug)) {
        suffix++;
        slug = `${base}-${suffix}`;
      }
      lastSuffix.set(base, suffix);
      taken.add(slug);
      return slug;
    },
  };
}
