#!/usr/bin/env escript
%% Translate a rabbitmq.conf with RabbitMQ's own cuttlefish schemas, as the broker does at boot
%% (rabbitmq-diagnostics needs a running node; this does not).
%% Usage: rabbitmq_conf.escript PLUGINS_DIR CONF[,CONF...] APP...  (files merged in that order, as
%% the broker merges rabbitmq.conf and conf.d/*)
%% Prints the generated application environment and exits 0, or prints the errors and exits 1.
main([PluginsDir, ConfFiles | Apps]) ->
    [code:add_patha(D) || D <- filelib:wildcard(filename:join(PluginsDir, "*/ebin"))],
    Schemas = lists:append([filelib:wildcard(filename:join([PluginsDir, App ++ "-*", "priv", "schema", "*.schema"]))
                            || App <- Apps]),
    Schema = cuttlefish_schema:files(Schemas),
    case cuttlefish_conf:files(string:split(ConfFiles, ",", all)) of
        {errorlist, Errors} ->
            io:format("conf errors: ~p~n", [Errors]),
            halt(1);
        Conf ->
            case cuttlefish_generator:map(Schema, Conf) of
                {error, Phase, {errorlist, Errors}} ->
                    io:format("~p errors:~n", [Phase]),
                    [io:format("  ~s~n", [cuttlefish_error:xlate(E)]) || E <- Errors],
                    halt(1);
                Config ->
                    io:format("~p~n", [Config]),
                    halt(0)
            end
    end.
