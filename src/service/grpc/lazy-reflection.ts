// gRPC server reflection (grpc.reflection.v1 and v1alpha, from @grpc/reflection) over the served package definition,
// its descriptor index built on the first reflection call: building it costs ~0.1 s of CPU, which start-up no longer
// pays. The services and their handlers are the package's own, captured through its public addToServer.
import type * as grpc from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';

type Handler = (...args: unknown[]) => unknown;
interface Registration {
  definition: grpc.ServiceDefinition;
  implementation: Record<string, Handler>;
}

/** What a ReflectionService registers, in order, without a server. */
function registrations(reflection: ReflectionService): Registration[] {
  const out: Registration[] = [];
  reflection.addToServer({ addService: (definition, implementation) => void out.push({ definition, implementation: implementation as Record<string, Handler> }) });
  return out;
}

export function addLazyReflection(server: Pick<grpc.Server, 'addService'>, pkg: PackageDefinition): void {
  let served: Registration[] | undefined;
  // An empty package definition gives the same services (their definitions come from the reflection protos) at no cost.
  registrations(new ReflectionService({})).forEach(({ definition, implementation }, i) => {
    const lazy = Object.fromEntries(
      Object.keys(implementation).map((method) => [
        method,
        (...args: unknown[]) => {
          served ??= registrations(new ReflectionService(pkg));
          return served[i].implementation[method](...args);
        },
      ]),
    );
    server.addService(definition, lazy);
  });
}
