/** S3 request and response bodies as XML, through fast-xml-parser (no hand-written parsing). */
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { malformedXml } from './errors';

export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** Elements that may repeat in the request bodies this server reads: always parsed as arrays. */
const REPEATED = new Set(['Object', 'Part']);

const parser = new XMLParser({
  ignoreAttributes: true,
  ignoreDeclaration: true,
  removeNSPrefix: true,
  parseTagValue: false,
  trimValues: false,
  htmlEntities: true,
  isArray: (name) => REPEATED.has(name),
});

const builder = new XMLBuilder({ ignoreAttributes: false, attributeNamePrefix: '@_', processEntities: true, suppressEmptyNode: false });

export type XmlNode = { [name: string]: XmlValue };
export type XmlValue = string | XmlNode | XmlNode[] | string[] | undefined;

/** The content of `root` in an XML request body; 400 MalformedXML when it is not well-formed or has another root. */
export function parseXml(body: Buffer, root: string): XmlNode {
  const text = body.toString('utf8');
  if (text.trim() === '' || XMLValidator.validate(text) !== true) throw malformedXml();
  const doc = parser.parse(text) as XmlNode;
  const content = doc[root];
  if (content === undefined) throw malformedXml();
  return typeof content === 'object' && !Array.isArray(content) ? content : {};
}

/** A text child of a parsed element, trimmed (XML whitespace around values is not part of them for numbers and flags). */
export function xmlText(node: XmlNode, name: string): string | undefined {
  const v = node[name];
  return typeof v === 'string' ? v : undefined;
}

/** An XML response document; values that are undefined are left out. */
export function xmlDocument(root: string, content: Record<string, unknown>): string {
  const defined = Object.fromEntries(Object.entries(content).filter(([, v]) => v !== undefined));
  return `<?xml version="1.0" encoding="UTF-8"?>\n${builder.build({ [root]: { '@_xmlns': S3_XMLNS, ...defined } }) as string}`;
}

/** Escapes text for an XML element built by hand. */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}
