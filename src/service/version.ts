import { readFileSync } from 'node:fs';

/** The package version, reported by OpenAPI and OIP server metadata. */
export const PACKAGE_VERSION: string = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version;
