/** JSON-pointer escaping of one path segment (RFC 6901), for the JSON patches of both dialects. */
export function pointer(segment: string): string {
  return segment.replace(/~/g, '~0').replace(/\//g, '~1');
}
