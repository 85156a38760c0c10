// OIP server metadata, REST (GET /v2) and gRPC (ServerMetadata) alike: the name, the version, and the protocol
// extensions served, by the names Triton gives them in its extension documents.
import { PACKAGE_VERSION } from '../version.ts';
import { BINARY_EXTENSION } from './binary-data.ts';

export const OIP_EXTENSIONS = [BINARY_EXTENSION, 'model_configuration', 'statistics', 'model_repository'] as const;

export function oipServerMetadata() {
  return { name: 'supsup', version: PACKAGE_VERSION, extensions: [...OIP_EXTENSIONS] };
}
