/**
 * Characters XML 1.0 forbids (C0 controls other than tab/newline/CR, lone surrogates, U+FFFE/FFFF).
 * Token text can contain any of them; one would make a whole SVG or XHTML consumer refuse the file.
 */
const XML_INVALID = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** Escape text for HTML/XML content and attribute values (quoted with either quote). */
export function escapeXml(s: string): string {
  return s.replace(XML_INVALID, '\ufffd').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that can sit inside <script>: no "</script", "<!--" or line separators can end or break it. */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value)
    .replace(XML_INVALID, '\\ufffd')
    .replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
